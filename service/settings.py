"""Settings from the environment (``TENANTS_*``), validated once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.naming import is_valid_iam_path, validate_resource_prefix

DEFAULT_TIERS_FILE = Path(__file__).with_name("tiers.toml")


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
    worker_enabled: bool = True
    worker_concurrency: int = Field(4, ge=1, le=256)
    lease_seconds: float = Field(60.0, ge=1)
    poll_interval_s: float = Field(1.0, gt=0, le=60)
    shutdown_grace_s: float = Field(20.0, ge=0)
    max_body_bytes: int = Field(16 * 1024, ge=1024)
    max_wait_s: float = Field(60.0, ge=0, le=300)
    # How long a response stays replayable under its Idempotency-Key (API.md: >= 24 h).
    idempotency_ttl_hours: int = Field(24, le=720)
    # Test-only: the process SIGKILLs itself at this point (service/crash.py).
    test_crash_at: str | None = None
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

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
