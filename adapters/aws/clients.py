"""One aioboto3 session and one client per AWS service for the process lifetime.

Opened in the app's lifespan (``await clients.start()`` / ``await clients.close()``, or
``async with AwsClients(...) as clients``); never a client per request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Literal

import aioboto3
from botocore.config import Config

from adapters.aws import retries
from adapters.aws.errors import aws_call

# "events": EventBridge PutEvents, for lifecycle events (adapters/events/eventbridge.py).
SERVICES = ("cognito-idp", "cognito-identity", "iam", "sts", "secretsmanager", "events")
RetryMode = Literal["adaptive", "standard"]
EventHook = tuple[str, Callable[..., Any]]


class AwsClients:
    """The AWS clients of one cell (today: the only one).

    ``endpoint_url`` is None for real AWS and the emulator's URL locally; static credentials are
    for the emulator only (real AWS uses the default credential chain). ``max_attempts`` counts
    every attempt, the first included: 1 means no retries (adapters/aws/retries.py: botocore's
    standard retries, which never retry a quota error).
    ``event_hooks`` are ``(event_name, handler)`` pairs registered on every client, e.g.
    ``adapters.aws.param_check.HOOK``.
    """

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        max_attempts: int = 5,
        retry_mode: RetryMode = "adaptive",
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_pool_connections: int = 50,
        event_hooks: Sequence[EventHook] = (),
    ) -> None:
        if retry_mode not in ("adaptive", "standard"):
            raise ValueError(f"retry_mode must be 'adaptive' or 'standard', not {retry_mode!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        self.region = region
        self.endpoint_url = endpoint_url
        self._credentials = {
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "aws_session_token": session_token,
        }
        # botocore's own retry handler is made inert (one attempt): adapters/aws/retries.py puts
        # botocore's standard retries back, minus quota errors, with max_attempts attempts.
        self._config = Config(
            region_name=region,
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_pool_connections,
        )
        self.max_attempts = max_attempts
        self.retry_mode = retry_mode
        self._event_hooks = list(event_hooks)
        self._stack: AsyncExitStack | None = None
        self._clients: dict[str, Any] = {}
        self._single_shot: dict[str, Any] = {}

    def __repr__(self) -> str:  # never show credentials
        return f"AwsClients(region={self.region!r}, endpoint_url={self.endpoint_url!r}, started={self.started})"

    @property
    def started(self) -> bool:
        return self._stack is not None

    async def start(self) -> None:
        if self._stack is not None:
            raise RuntimeError("AwsClients already started")
        session = aioboto3.Session(region_name=self.region, **self._credentials)
        stack = AsyncExitStack()
        try:
            for service in SERVICES:
                # The single-shot clients are for calls AWS cannot deduplicate (CreateUserPool,
                # CreateIdentityPool, ...): a retry after a lost response would create a second
                # resource. Those go out once; the provisioning step retries instead (up to its own
                # max_attempts tries), and adopts what a lost call created before creating again.
                for registry, attempts in ((self._clients, self.max_attempts), (self._single_shot, 1)):
                    client = await stack.enter_async_context(
                        session.client(service, endpoint_url=self.endpoint_url, config=self._config)
                    )
                    retries.register(client, max_attempts=attempts, mode=self.retry_mode)
                    for event_name, handler in self._event_hooks:
                        client.meta.events.register(event_name, handler)
                    registry[service] = client
        except BaseException:
            self._clients.clear()
            self._single_shot.clear()
            await stack.aclose()
            raise
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack = self._stack, None
        self._clients.clear()
        self._single_shot.clear()
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> AwsClients:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def client(self, service: str, *, retries: bool = True) -> Any:
        """The open client for ``service`` (one of SERVICES); ``retries=False`` gives the client
        that sends each call once (for creates AWS cannot deduplicate)."""
        if service not in SERVICES:
            raise KeyError(f"unknown AWS service {service!r}; known: {', '.join(SERVICES)}")
        if self._stack is None:
            raise RuntimeError("AwsClients not started: call await start() (or use async with) first")
        return (self._clients if retries else self._single_shot)[service]

    async def caller_identity(self) -> str:
        """The account id the credentials belong to (STS GetCallerIdentity)."""
        response = await aws_call(self.client("sts"), "GetCallerIdentity")
        return str(response["Account"])
