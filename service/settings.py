"""Settings from the environment (``TENANTS_*``), validated once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adapters.events.signing import parse_secrets
from domain.naming import is_valid_iam_path, is_valid_iam_policy_arn, validate_resource_prefix

DEFAULT_TIERS_FILE = Path(__file__).with_name("tiers.toml")
# Public-key JWS algorithms only (RFC 7518): no "none", no HS* shared secrets.
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENANTS_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    var_dir: Path = Path("var")
    # Empty means "a SQLite file under var_dir".
    database_url: str = ""
    # PostgreSQL connections kept open per process, and how many more it may open under load (an
    # extra one is closed when given back, so a burst beyond the pool costs a connect each time).
    db_pool_size: int = Field(20, ge=1, le=500)
    db_max_overflow: int = Field(10, ge=0, le=500)
    aws_mode: Literal["emulated", "aws"] = "emulated"
    aws_endpoint_url: str | None = None
    emulator_port: int = Field(0, ge=0, le=65535)
    # The embedded emulator keeps its resources in <var_dir>/emulator-state.pickle, so a restart
    # next to a registry that survived finds the tenants' resources again (README, Quick start).
    emulator_persist: bool = True
    # The credentials sent to the emulator (aws_mode "emulated" only; real AWS always uses the
    # default credential chain). Other than the default only when the emulator enforces IAM
    # policies (tests/integration/test_least_privilege.py).
    emulator_access_key_id: str = "testing"
    emulator_secret_access_key: SecretStr = SecretStr("testing")
    aws_region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    aws_max_attempts: int = Field(8, ge=1, le=20)
    # botocore retry mode. "standard" by default: "adaptive" slows the whole shared client after
    # any throttle, so one tenant's throttled calls would delay every other tenant's.
    aws_retry_mode: Literal["standard", "adaptive"] = "standard"
    aws_connect_timeout_s: float = Field(5.0, gt=0)
    aws_read_timeout_s: float = Field(30.0, gt=0)
    # Client-side rate limiting of Cognito calls by quota category (adapters/aws/ratelimit.py):
    # each call waits for its category's token (FIFO), and the rate halves on a throttle and grows
    # back (AIMD), so replicas sharing an account converge. TENANTS_COGNITO_QUOTAS overrides AWS's
    # rates: "UserPoolUpdate=15,UserPoolClientUpdate=15/5,UserPoolResourceUpdate=15/5,UserCreation=50"
    # (requests/s per account, then /per user pool); only the categories named change.
    aws_rate_limit: bool = True
    cognito_quotas: str = ""
    # Test and CI aid: check every AWS request against botocore's service models (pattern, min,
    # max, enum) and refuse to send one that real AWS would reject.
    aws_strict_params: bool = False
    tiers_file: Path = DEFAULT_TIERS_FILE
    bootstrap_api_key: SecretStr | None = None
    # A verified API key is trusted for this many seconds without a registry read; a key revoked
    # by another process (tenantctl, another replica) is refused at most this long after. 0: off.
    api_key_cache_s: float = Field(5.0, ge=0, le=60)
    resource_prefix: str = "tenants"
    role_path: str = "/tenants/"
    # A customer managed policy ARN: every tenant role is created with it as its permissions
    # boundary, and deploy/iam-policy.json then lets the service create roles only with it.
    role_permissions_boundary: str | None = None
    worker_enabled: bool = True
    worker_concurrency: int = Field(4, ge=1, le=1024)
    # Steps of one tenant's plan run at once; 0: no limit (every step whose dependencies are done).
    # 1 runs the plan one step at a time (bench/critical_path.py compares the two).
    plan_concurrency: int = Field(0, ge=0, le=64)
    lease_seconds: float = Field(60.0, ge=1)
    poll_interval_s: float = Field(1.0, gt=0, le=60)
    shutdown_grace_s: float = Field(20.0, ge=0)
    max_body_bytes: int = Field(16 * 1024, ge=1024)
    # Sum of every request header line (name, value, ": " and CRLF); larger -> 431 (RFC 6585).
    max_header_bytes: int = Field(8192, ge=1024)
    # Token bucket per credential (API key id or token subject), in this process's memory: each
    # replica keeps its own buckets, so N replicas admit up to N times these rates.
    rate_limit_per_s: float = Field(20.0, gt=0)
    rate_limit_burst: int = Field(40, ge=1)
    max_wait_s: float = Field(60.0, ge=0, le=300)
    # How long a response stays replayable under its Idempotency-Key (API.md: >= 24 h).
    idempotency_ttl_hours: int = Field(24, le=720)
    # The HMAC key under which an Idempotency-Key fingerprint hashes identity-provider secrets
    # (service/idempotency.py). Unset: a random key generated once and kept in the registry.
    idempotency_hmac_key: SecretStr | None = None
    # Test-only: the process SIGKILLs itself at this point (service/crash.py).
    test_crash_at: str | None = None
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # JWT bearer tokens (OAuth2 client credentials, service/jwt_auth.py): off while no JWKS URL is set.
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = Field(None, validate_default=True)
    jwt_audience: str | None = Field(None, validate_default=True)
    jwt_scopes_claim: str = Field("scope", min_length=1)
    jwt_algorithms: Annotated[tuple[str, ...], NoDecode] = ("RS256", "ES256")
    jwt_jwks_cache_s: float = Field(300.0, gt=0, le=86400)
    jwt_leeway_s: float = Field(30.0, ge=0, le=300)
    # Lifecycle events (README "Lifecycle events"): an EventBridge bus (unset: none) and signed
    # webhooks, delivered from the registry's outbox with retries, capped exponential backoff and
    # jitter, and given up ("dead") after events_max_attempts attempts.
    event_bus_name: str | None = Field(None, pattern=r"^[/.\-_A-Za-z0-9]{1,256}$")
    event_source: str = Field("tenant-identity-provisioner", pattern=r"^[A-Za-z0-9_.-]{1,256}$")
    webhook_urls: Annotated[tuple[str, ...], NoDecode] = ()
    webhook_secret: SecretStr | None = Field(None, validate_default=True)
    webhook_timeout_s: float = Field(10.0, gt=0, le=60)
    events_max_attempts: int = Field(12, ge=1, le=100)
    events_backoff_s: float = Field(1.0, gt=0, le=3600)
    events_backoff_max_s: float = Field(300.0, gt=0, le=86400)
    events_poll_interval_s: float = Field(1.0, gt=0, le=60)
    events_lease_seconds: float = Field(60.0, ge=1)
    events_batch_size: int = Field(20, ge=1, le=500)

    @field_validator("resource_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        validate_resource_prefix(value)
        for word in ("aws", "amazon", "cognito"):
            if word in value:
                raise ValueError(f"must not contain {word!r} (it becomes part of Cognito prefix domains)")
        return value

    @field_validator("cognito_quotas")
    @classmethod
    def _cognito_quotas(cls, value: str) -> str:
        from adapters.aws.ratelimit import parse_quotas

        parse_quotas(value)
        return value

    @field_validator("test_crash_at")
    @classmethod
    def _crash_point(cls, value: str | None) -> str | None:
        if value:
            from service.crash import parse

            parse(value)
        return value or None

    @field_validator("role_path")
    @classmethod
    def _role_path(cls, value: str) -> str:
        if not is_valid_iam_path(value):
            raise ValueError("must be '/' or '/segment/.../' (IAM path rules)")
        return value

    @field_validator("role_permissions_boundary")
    @classmethod
    def _permissions_boundary(cls, value: str | None) -> str | None:
        if value and not is_valid_iam_policy_arn(value):
            raise ValueError("must be the ARN of a customer managed IAM policy: arn:aws:iam::<12-digit account>:policy/<name>")
        return value or None

    @field_validator("idempotency_ttl_hours")
    @classmethod
    def _idempotency_ttl(cls, value: int) -> int:
        if value < 24:
            raise ValueError("must be at least 24: API.md promises clients a stored response for >= 24 h")
        return value

    @field_validator("idempotency_hmac_key")
    @classmethod
    def _idempotency_hmac_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (use `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        return value

    @field_validator("bootstrap_api_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (use `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        return value

    @field_validator("jwt_jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        url = urlsplit(value)
        loopback = url.hostname in ("127.0.0.1", "::1", "localhost")
        if not url.hostname or not (url.scheme == "https" or (url.scheme == "http" and loopback)):
            raise ValueError("must be an https:// URL (plain http only on a loopback address)")
        return value

    @field_validator("jwt_issuer", "jwt_audience")
    @classmethod
    def _jwt_required(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("jwt_jwks_url") and not value:
            raise ValueError("required when TENANTS_JWT_JWKS_URL is set")
        return value or None

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _jwt_algorithms(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, (list, tuple)):
            raise ValueError("a comma-separated list such as RS256,ES256")
        names = [str(name).strip() for name in value]
        names = [n for n in names if n]
        if not names:
            raise ValueError("name at least one algorithm, such as RS256")
        for name in names:
            # Never "none" nor HS*: a JWKS publishes public keys, and a shared-secret algorithm would
            # let anyone who can read the JWKS forge tokens (RFC 8725 section 2.1).
            if name not in JWT_ALGORITHMS:
                raise ValueError(f"{name!r} is not one of {', '.join(JWT_ALGORITHMS)}")
        return tuple(dict.fromkeys(names))

    @field_validator("event_bus_name", mode="before")
    @classmethod
    def _event_bus(cls, value: object) -> object:
        return value or None  # empty: no EventBridge destination

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _webhook_urls(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, (list, tuple)):
            raise ValueError("a comma-separated list of URLs")
        urls = [str(url).strip() for url in value]
        urls = [u for u in urls if u]
        for url in urls:
            parts = urlsplit(url)
            loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
            if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
                # The URL itself is not repeated: it may carry a token.
                raise ValueError("each URL must be https:// (plain http only on a loopback address)")
        return tuple(dict.fromkeys(urls))

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            value = None
        if info.data.get("webhook_urls") and value is None:
            raise ValueError("required when TENANTS_WEBHOOK_URLS is set")
        if value is not None:
            parse_secrets(value.get_secret_value())  # whsec_<base64>, several while rotating
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'tenants.db').resolve()}"


class SettingsError(Exception):
    """Raised with one line per bad variable, naming it."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = "TENANTS_" + "_".join(str(part) for part in error["loc"]).upper()
            lines.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
