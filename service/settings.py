"""Settings from the environment (``TENANTS_*``), validated once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    aws_mode: Literal["emulated", "aws"] = "emulated"
    aws_endpoint_url: str | None = None
    emulator_port: int = Field(0, ge=0, le=65535)
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
    # Test and CI aid: check every AWS request against botocore's service models (pattern, min,
    # max, enum) and refuse to send one that real AWS would reject.
    aws_strict_params: bool = False
    tiers_file: Path = DEFAULT_TIERS_FILE
    bootstrap_api_key: SecretStr | None = None
    resource_prefix: str = "tenants"
    role_path: str = "/tenants/"
    # A customer managed policy ARN: every tenant role is created with it as its permissions
    # boundary, and deploy/iam-policy.json then lets the service create roles only with it.
    role_permissions_boundary: str | None = None
    worker_enabled: bool = True
    worker_concurrency: int = Field(4, ge=1, le=256)
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

    @field_validator("resource_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        validate_resource_prefix(value)
        for word in ("aws", "amazon", "cognito"):
            if word in value:
                raise ValueError(f"must not contain {word!r} (it becomes part of Cognito prefix domains)")
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
