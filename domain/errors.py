"""Domain errors: one base with a stable ``code``; HTTP statuses are decided in ``service/``."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises. ``code`` is stable and machine-readable."""

    code: str = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class TenantNotFound(DomainError):
    code = "tenant_not_found"


class TenantConflict(DomainError):
    """The request contradicts the tenant's stored spec or state (HTTP 409)."""

    code = "tenant_conflict"

    def __init__(self, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidTransition(TenantConflict):
    code = "invalid_state"


class UnknownTier(DomainError):
    code = "unknown_tier"


class InvalidInput(DomainError):
    """A value breaks a domain rule; ``field`` names it (HTTP 422)."""

    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class TemplateError(DomainError):
    """The tier template file is invalid; the message names the tier and the field."""

    code = "invalid_template"


class CloudError(DomainError):
    """An AWS call failed. ``code`` is the AWS error code (kept in the tenant's ``last_error``).

    ``retryable`` errors (throttling, 5xx, lost connections) may be retried by the caller;
    the others (quotas, invalid parameters, access denied) are permanent.
    """

    code = "AwsError"

    def __init__(self, code: str, message: str, *, retryable: bool = False, operation: str = "") -> None:
        super().__init__(message, code=code)
        self.retryable = retryable
        self.operation = operation


class CloudNotFound(CloudError):
    """The AWS resource does not exist (ResourceNotFoundException, NoSuchEntity, ...)."""

    def __init__(self, code: str = "ResourceNotFoundException", message: str = "not found", *, operation: str = "") -> None:
        super().__init__(code, message, retryable=False, operation=operation)


class CloudAlreadyExists(CloudError):
    """The resource's name is taken (EntityAlreadyExists, GroupExistsException, ...)."""

    def __init__(self, code: str, message: str, *, operation: str = "") -> None:
        super().__init__(code, message, retryable=False, operation=operation)


class ResourceNotOwned(CloudError):
    """A resource with the tenant's deterministic name exists but is not ours to adopt."""

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotOwned", message, retryable=False)


class RegistryUnavailable(DomainError):
    code = "registry_unavailable"
