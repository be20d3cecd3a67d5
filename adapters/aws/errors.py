"""Translate botocore failures into domain errors (AWS-FACTS.md, "Errors and what they mean").

Every gateway call goes through :func:`aws_call` (or the :func:`translated` context manager), so
the domain only ever sees CloudError, CloudNotFound, CloudAlreadyExists or QuotaExceeded, each
carrying the AWS error code, the AWS message, the operation name and how many times the call was
sent (``attempts``: more than one means botocore already retried it with the whole budget). Our
own request checks (AwsParamViolation) and botocore's ParamValidationError are programming errors
and pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore import xform_name
from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from adapters.aws.retries import attempts_of
from domain.errors import (
    QUOTA_CODES,
    CloudAlreadyExists,
    CloudError,
    CloudNotFound,
    QuotaExceeded,
)

NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NoSuchEntity", "UserNotFoundException"})
ALREADY_EXISTS_CODES = frozenset(
    {"EntityAlreadyExists", "GroupExistsException", "UsernameExistsException", "ResourceExistsException"}
)
RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",  # Cognito throttling, sent with HTTP 400
        "InternalErrorException",
        "Throttling",  # IAM, STS
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceFailure",  # IAM 500
        "ServiceUnavailable",
        "InternalFailure",
        "ConcurrentModificationException",  # cognito-identity SetIdentityPoolRoles
        "ConcurrentModification",  # the same from IAM
    }
)

_MAX_MESSAGE = 500
# Messages are AWS's own; some (signature errors) can echo an access key id. Never pass one on.
_ACCESS_KEY_RE = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b")


def _clean(message: str) -> str:
    message = _ACCESS_KEY_RE.sub("<redacted>", message.strip())
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def from_client_error(exc: ClientError, operation: str = "") -> CloudError:
    error: dict[str, Any] = exc.response.get("Error", {}) or {}
    meta: dict[str, Any] = exc.response.get("ResponseMetadata", {}) or {}
    status = int(meta.get("HTTPStatusCode") or 0)
    code = str(error.get("Code") or (f"HTTP{status}" if status else "Unknown"))
    message = _clean(str(error.get("Message") or error.get("message") or code))
    operation = exc.operation_name or operation
    if code in NOT_FOUND_CODES:
        return CloudNotFound(code, message, operation=operation)
    if code in ALREADY_EXISTS_CODES:
        return CloudAlreadyExists(code, message, operation=operation)
    if code in QUOTA_CODES:  # never retried, by any layer (adapters/aws/retries.py)
        return QuotaExceeded(code, message, operation=operation)
    # botocore reports a bodiless 5xx with the status as its code ("500", "503").
    retryable = code in RETRYABLE_CODES or status >= 500 or code.isdigit() and int(code) >= 500
    return CloudError(code, message, retryable=retryable, operation=operation, attempts=attempts_of(exc))


def translate(exc: BaseException, operation: str = "") -> CloudError | None:
    """The domain error for a botocore failure, or None when it is not one we translate."""
    if isinstance(exc, ClientError):
        return from_client_error(exc, operation)
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        # Includes connect and read time-outs: the call may have reached AWS, so callers must
        # adopt on retry rather than create blindly. str() names the endpoint, never credentials.
        return CloudError(
            type(exc).__name__, _clean(str(exc)), retryable=True, operation=operation, attempts=attempts_of(exc)
        )
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return CloudError("NoCredentials", "no usable AWS credentials were found", retryable=False, operation=operation)
    return None


@contextmanager
def translated(operation: str = "") -> Iterator[None]:
    """``with translated("CreateRole"): await client.create_role(...)`` raises domain errors."""
    try:
        yield
    except Exception as exc:
        domain_error = translate(exc, operation)
        if domain_error is None:
            raise
        raise domain_error from exc


async def aws_call(client: Any, operation: str, **params: Any) -> dict[str, Any]:
    """Call ``operation`` (its AWS name, e.g. ``CreateUserPool``) with domain errors out."""
    method = getattr(client, xform_name(operation))
    with translated(operation):
        return await method(**params)
