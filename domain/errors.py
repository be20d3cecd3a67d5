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

    def __init__(
        self, code: str, message: str, *, retryable: bool = False, operation: str = "", attempts: int = 1
    ) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable
        self.operation = operation
        # How many times the call was sent, the SDK's own retries included. A retryable error of
        # a call sent more than once has had its retry budget: no caller retries it again.
        self.attempts = attempts


class CloudNotFound(CloudError):
    """The AWS resource does not exist (ResourceNotFoundException, NoSuchEntity, ...)."""

    def __init__(self, code: str = "ResourceNotFoundException", message: str = "not found", *, operation: str = "") -> None:
        super().__init__(code, message, retryable=False, operation=operation)


class CloudAlreadyExists(CloudError):
    """The resource's name is taken (EntityAlreadyExists, GroupExistsException, ...)."""

    def __init__(self, code: str, message: str, *, operation: str = "") -> None:
        super().__init__(code, message, retryable=False, operation=operation)


class QuotaExceeded(CloudError):
    """An AWS quota is used up (Cognito LimitExceededException, IAM LimitExceeded,
    ServiceQuotaExceededException): permanent until someone frees or raises it, so never retried.
    ``code`` is ``quota_exceeded``; ``aws_code`` keeps AWS's own."""

    def __init__(self, aws_code: str, message: str, *, operation: str = "") -> None:
        super().__init__("quota_exceeded", message, retryable=False, operation=operation)
        self.aws_code = aws_code


class ResourceNotOwned(CloudError):
    """A resource with the tenant's deterministic name exists but is not ours to adopt."""

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotOwned", message, retryable=False)


class RegistryUnavailable(DomainError):
    code = "registry_unavailable"


class ApiKeyConflict(DomainError):
    """An API key's id or value is already registered. ``holder_id`` names the key holding it
    (when known); the message never carries a key or its hash."""

    code = "api_key_conflict"

    def __init__(self, message: str, *, holder_id: str | None = None) -> None:
        super().__init__(message)
        self.holder_id = holder_id


QUOTA_CODES = frozenset({"LimitExceededException", "LimitExceeded", "ServiceQuotaExceededException"})
# The quota an operation's quota error is about (AWS-FACTS.md, "Quotas"), for the message.
_QUOTA_OF = {
    "CreateUserPool": "user pools per account and Region (1,000 by default, raisable to 10,000)",
    "CreateIdentityPool": "identity pools per account and Region (1,000, not adjustable)",
    "CreateRole": "IAM roles per account (1,000 by default, 5,000 at most; global, all Regions)",
    "CreateUserPoolClient": "app clients per user pool (1,000)",
    "CreateGroup": "groups per user pool (10,000)",
    "CreateIdentityProvider": "identity providers per user pool (300)",
    "CreateUserPoolDomain": "user pool domains (custom domains: 4 per account and Region, not adjustable)",
    "PutRolePolicy": "the size of a role's inline policies (10,240 characters per role)",
    "CreateSecret": "secrets per account and Region (500,000)",
}
_INVALID_CODES = frozenset(
    {"InvalidParameterException", "InvalidParameterValue", "ValidationException", "InvalidInput", "MalformedPolicyDocument"}
)
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorizedException"})


def explain(error: CloudError) -> str:
    """A sentence a person can act on, with AWS's own words kept at the end."""
    said = f"AWS said: {error.message}"
    if isinstance(error, QuotaExceeded) or error.code in QUOTA_CODES:
        aws_code = error.aws_code if isinstance(error, QuotaExceeded) else error.code
        quota = _QUOTA_OF.get(error.operation, "an AWS quota")
        call = f" on {error.operation}" if error.operation else ""
        return (
            f"An AWS quota is reached: {quota} ({aws_code}{call}). Delete unused tenants, raise the quota "
            f"where AWS allows it, or use another account, then retry. {said}"
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
