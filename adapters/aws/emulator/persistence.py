"""EMULATOR EXTENSION: the emulator's state kept in a file, so an embedded emulator restarted
next to a registry that survived (``make run`` stopped and started again) still holds the
tenants' resources the registry points at.

moto keeps every resource in process memory (``BackendDict`` -> account -> Region -> backend).
`StateFile` pickles the backends of the services the provisioner uses after every call that
may have changed them, before the answer leaves (so a response the service saw is never
forgotten, even if the process is SIGKILLed right after), and loads them back at start-up.
Calls are serialised while it is on: this is a single-user development emulator, not a load
generator. The file is written to a temporary name and renamed over the old one, so a kill
mid-write leaves the previous state; it is created 0600 and holds only emulated resources.

The file is a pickle: load only a file this process family wrote (it lives in the operator's
own ``var/`` directory).
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import threading
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("emulator")

# The services whose state the provisioner creates or reads (STS keeps none worth keeping).
SERVICES = ("cognito-idp", "cognito-identity", "iam", "secretsmanager", "events", "sqs")

_FORMAT = 1
_JWK = "cognito-idp-jwk"


def _is_read(operation: str) -> bool:
    """Calls that never change state; every other call is followed by a save (sign-ins too:
    they keep refresh tokens and sessions)."""
    return operation.startswith(("Describe", "Get", "List", "AdminGet", "AdminList"))


class _Pickler(pickle.Pickler):
    """moto's user pools hold the JSON web key moto signs tokens with, loaded from moto's own
    resource file; it cannot be pickled, and need not be: it is the same file on load."""

    def persistent_id(self, obj: Any) -> Any:
        from joserfc.jwk import RSAKey

        return _JWK if isinstance(obj, RSAKey) else None


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        if pid != _JWK:
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        from joserfc import jwk
        from moto.utilities.utils import load_resource

        return jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))


def _backend_dict(service: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)  # type: ignore[call-overload]


def snapshot() -> bytes:
    """Every Region backend of SERVICES, as {service: {account: {region: backend}}}."""
    state: dict[str, dict[str, dict[str, Any]]] = {}
    for service in SERVICES:
        accounts = _backend_dict(service)
        state[service] = {account: dict(regions.items()) for account, regions in accounts.items()}
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump({"format": _FORMAT, "state": state})
    return buffer.getvalue()


def restore(data: bytes) -> int:
    """Put a snapshot's backends in place of the current ones; returns how many it restored."""
    loaded = _Unpickler(io.BytesIO(data)).load()
    if not isinstance(loaded, dict) or loaded.get("format") != _FORMAT:
        raise ValueError("not an emulator state file of this version")
    restored = 0
    for service, accounts in loaded["state"].items():
        if service not in SERVICES:
            continue
        backend_dict = _backend_dict(service)
        for account, regions in accounts.items():
            account_backends = backend_dict[account]  # creates and registers it with moto
            for region, backend in regions.items():
                dict.__setitem__(account_backends, region, backend)
                restored += 1
    return restored


class StateFile:
    """Loads the emulator's state from ``path`` (if it exists) and saves it after each call that
    may change it; used as a WSGI middleware around the emulator's app."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def load(self) -> int:
        """Restore the saved state, if any. A file that cannot be read is set aside (renamed
        ``*.unreadable``) and logged, never silently dropped, and the emulator starts empty."""
        if not self.path.exists():
            return 0
        try:
            restored = restore(self.path.read_bytes())
        except Exception as exc:  # a truncated or foreign file: keep it for the operator
            aside = self.path.with_name(self.path.name + ".unreadable")
            os.replace(self.path, aside)
            log.error("emulator_state_unreadable", path=str(self.path), moved_to=str(aside), error=type(exc).__name__)
            return 0
        log.info("emulator_state_loaded", path=str(self.path), backends=restored)
        return restored

    def save(self) -> None:
        data = snapshot()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def wrap(self, app: Any) -> Any:
        return _Persisting(app, self)


class _Persisting:
    def __init__(self, app: Any, state: StateFile) -> None:
        self.app = app
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        from .faults import identify

        call = identify(environ)
        changes = str(environ.get("PATH_INFO", "")).startswith("/moto-api/") if call is None else not _is_read(call.operation)
        if not changes:
            return self.app(environ, start_response)
        with self.state._lock:
            # The whole answer is produced before the save, and the save before it is sent.
            body = b"".join(self.app(environ, start_response))
            try:
                self.state.save()
            except Exception as exc:
                log.error("emulator_state_save_failed", path=str(self.state.path), error=type(exc).__name__)
        return [body]
