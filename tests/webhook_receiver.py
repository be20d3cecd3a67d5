"""A webhook receiver for the tests: a real HTTP server on 127.0.0.1 that checks every request's
signature as any receiver would, with the Standard Webhooks library's own verifier
(``standardwebhooks.Webhook(secret).verify``, not code of this service), and answers as scripted:
401 to a request that does not verify."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    event: dict[str, Any]
    headers: dict[str, str]  # names in lower case
    attempt: int  # 1 for the first request of this event on this path
    status: int  # what the receiver answered
    verified: bool


@dataclass
class WebhookReceiver:
    secret: str  # whsec_<base64>, as the receiver's operator configured it
    # path -> how many requests of each event it answers 500 before answering 200
    fail_first: dict[str, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _attempts: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
                event = json.loads(body)
                with receiver._lock:
                    key = (self.path, headers.get("webhook-id", ""))
                    receiver._attempts[key] += 1
                    attempt = receiver._attempts[key]
                    if not verified:
                        status = 401
                    elif attempt <= receiver.fail_first.get(self.path, 0):
                        status = 500
                    else:
                        status = 200
                    receiver.received.append(Received(self.path, event, headers, attempt, status, verified))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # bursts of concurrent deliveries (the default backlog is 5)
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered(self, path: str) -> list[Received]:
        """The requests of ``path`` answered 200, in arrival order."""
        with self._lock:
            return [r for r in self.received if r.path == path and r.status == 200]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.received)
