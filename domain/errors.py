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


_QUOTA_CODES = frozenset({"LimitExceededException", "LimitExceeded", "ServiceQuotaExceededException"})
_INVALID_CODES = frozenset(
    {"InvalidParameterException", "InvalidParameterValue", "ValidationException", "InvalidInput", "MalformedPolicyDocument"}
)
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorizedException"})


def explain(error: CloudError) -> str:
    """A sentence a person can act on, with AWS's own words kept at the end."""
    said = f"AWS said: {error.message}"
    if error.code in _QUOTA_CODES:
        return (
            f"An AWS quota is reached ({error.code}). Identity pools are capped at 1,000 per account and "
            "Region (not adjustable) and IAM roles at 1,000 per account by default: delete unused tenants, "
            f"raise the quota where AWS allows it, or use another account, then retry. {said}"
        )
    if error.code in _INVALID_CODES:
        return (
            f"AWS rejected a parameter ({error.code}); usually a value in the tier template that AWS does "
            f"not accept. Fix the template, restart the service and retry. {said}"
        )
    if error.code in _DENIED_CODES:
        return (
            f"The service's AWS credentials lack a permission ({error.code}); compare its IAM policy with "
            f"deploy/iam-policy.json. {said}"
        )
    if error.retryable:
        return f"AWS kept throttling or failing this call through every retry ({error.code}); retry the tenant later. {said}"
    return error.message
