"""Tier templates: what each tier provisions, validated once at start-up.

A template is data (loaded by ``service/`` from ``tiers.toml``); this module only validates it
and answers questions about it, so a bad file stops start-up with a message naming the tier and
the field. Role-policy statements use ``{{placeholder}}`` for per-tenant values so that IAM's own
policy variables (``${cognito-identity.amazonaws.com:sub}``) pass through untouched.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.errors import TemplateError

REQUIRED_AUTH_FLOWS = ("ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")
AuthFlow = Literal[
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_CUSTOM_AUTH",
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_AUTH",
]
PLACEHOLDERS = frozenset(
    {"tenant_id", "partition", "region", "account_id", "user_pool_id", "user_pool_arn", "identity_pool_id"}
)
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
# Placeholders whose values belong to one tenant: an Allow statement must name one of them in
# every Resource, or in a Condition that scopes it (dynamodb:LeadingKeys = "{{tenant_id}}#*").
TENANT_PLACEHOLDERS = frozenset({"tenant_id", "user_pool_id", "user_pool_arn", "identity_pool_id"})
PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov"})
# Characters no tenant or pool id contains. One of them must come between a tenant placeholder
# and any wildcard after it: "data/{{tenant_id}}*" or "data/{{tenant_id}}-*" would let tenant
# "acme" into "data/acme-corp/...", while "data/{{tenant_id}}/*" and "{{tenant_id}}-data/*" cannot.
_DELIMITERS = frozenset("/#.,=@+|")
_WILDCARDS = ("*", "?", "${")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PasswordPolicy(_Strict):
    minimum_length: int = Field(8, ge=6, le=99)
    require_uppercase: bool = True
    require_lowercase: bool = True
    require_numbers: bool = True
    require_symbols: bool = False
    temporary_password_validity_days: int = Field(7, ge=0, le=365)


class TokenValidity(_Strict):
    # Cognito's limits: access and ID tokens 5 minutes to 1 day; refresh tokens 1 hour to 10 years.
    access_token_minutes: int = Field(60, ge=5, le=1440)
    id_token_minutes: int = Field(60, ge=5, le=1440)
    refresh_token_days: int = Field(30, ge=1, le=3650)


class AppClient(_Strict):
    explicit_auth_flows: tuple[AuthFlow, ...] = REQUIRED_AUTH_FLOWS
    generate_secret: bool = False
    enable_token_revocation: bool = True
    prevent_user_existence_errors: bool = True

    @field_validator("explicit_auth_flows")
    @classmethod
    def _srp_and_refresh_always(cls, flows: tuple[str, ...]) -> tuple[str, ...]:
        missing = [flow for flow in REQUIRED_AUTH_FLOWS if flow not in flows]
        if missing:
            raise ValueError(f"every app client must allow {', '.join(REQUIRED_AUTH_FLOWS)}; missing {', '.join(missing)}")
        return flows


class Group(_Strict):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[\w+=,.@-]+$")
    description: str = Field("", max_length=2048)
    precedence: int | None = Field(None, ge=0)


class PolicyStatement(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sid: str | None = Field(None, alias="Sid", pattern=r"^[A-Za-z0-9]+$")
    effect: Literal["Allow", "Deny"] = Field(alias="Effect")
    action: tuple[str, ...] = Field(alias="Action", min_length=1)
    resource: tuple[str, ...] = Field(alias="Resource", min_length=1)
    condition: dict[str, dict[str, Any]] | None = Field(None, alias="Condition")

    @field_validator("action", "resource", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known_placeholders(self) -> PolicyStatement:
        for name in placeholders_in(self.as_document()):
            if name not in PLACEHOLDERS:
                raise ValueError(f"unknown placeholder {{{{{name}}}}}; known: {', '.join(sorted(PLACEHOLDERS))}")
        return self

    @model_validator(mode="after")
    def _tenant_scoped(self) -> PolicyStatement:
        """An Allow cannot reach beyond the tenant: every Resource is an ARN with no wildcard in
        its partition, service, Region or account, and the statement names the tenant's own
        values in every Resource or in a scoping Condition. (A Deny only ever narrows.)"""
        if self.effect != "Allow":
            return self
        for resource in self.resource:
            _check_arn_shape(resource)
        strings = [*self.resource, *_condition_values(self.condition, scoping_only=False)]
        for value in strings:
            _check_tenant_value_delimited(value)
        if all(_names_the_tenant(r) for r in self.resource):
            return self
        if any(_names_the_tenant(v) for v in _condition_values(self.condition, scoping_only=True)):
            return self
        unscoped = next(r for r in self.resource if not _names_the_tenant(r))
        raise ValueError(
            f"Resource {unscoped!r} is not scoped to the tenant: name "
            f"{', '.join('{{' + p + '}}' for p in sorted(TENANT_PLACEHOLDERS))} in it, or scope the "
            "statement with a Condition on one of them (e.g. dynamodb:LeadingKeys \"{{tenant_id}}#*\")"
        )

    def as_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"Effect": self.effect, "Action": list(self.action), "Resource": list(self.resource)}
        if self.sid:
            doc["Sid"] = self.sid
        if self.condition:
            doc["Condition"] = self.condition
        return doc


class TierTemplate(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    description: str = Field(min_length=1, max_length=500)
    feature_plan: Literal["LITE", "ESSENTIALS", "PLUS"] = "ESSENTIALS"
    deletion_protection: bool = False
    username_attributes: tuple[Literal["email", "phone_number"], ...] = ("email",)
    alias_attributes: tuple[Literal["email", "phone_number", "preferred_username"], ...] = ()
    auto_verified_attributes: tuple[Literal["email", "phone_number"], ...] = ("email",)
    case_sensitive_usernames: bool = False
    mfa: Literal["OFF", "OPTIONAL", "ON"] = "OFF"
    mfa_methods: tuple[Literal["TOTP"], ...] = ()
    password_policy: PasswordPolicy = PasswordPolicy()
    tokens: TokenValidity = TokenValidity()
    app_client: AppClient = AppClient()
    groups: tuple[Group, ...] = ()
    admin_group: str | None = None
    hosted_ui_domain: bool = False
    allow_guest_identities: bool = False
    authenticated_policy: tuple[PolicyStatement, ...] = Field(min_length=1)
    unauthenticated_policy: tuple[PolicyStatement, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> TierTemplate:
        if self.mfa != "OFF" and not self.mfa_methods:
            raise ValueError("mfa_methods: MFA OPTIONAL or ON needs at least one method (TOTP)")
        if self.mfa == "OFF" and self.mfa_methods:
            raise ValueError("mfa_methods: must be empty when mfa is OFF")
        if self.username_attributes and self.alias_attributes:
            raise ValueError("alias_attributes: Cognito accepts either username_attributes or alias_attributes, not both")
        names = [group.name for group in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("groups: group names must be unique")
        if self.admin_group is not None and self.admin_group not in names:
            raise ValueError(f"admin_group: {self.admin_group!r} is not one of the tier's groups")
        if self.allow_guest_identities and not self.unauthenticated_policy:
            raise ValueError("unauthenticated_policy: guest identities need a policy for the unauthenticated role")
        if not self.allow_guest_identities and self.unauthenticated_policy:
            raise ValueError("unauthenticated_policy: only allowed when allow_guest_identities is true")
        return self

    def summary(self) -> dict[str, Any]:
        """What GET /v1/tiers shows: the template's settings, policies included."""
        data = self.model_dump(mode="json", by_alias=True)
        data["has_admin_group"] = self.admin_group is not None
        return data


def _names_the_tenant(value: str) -> bool:
    return any(name in TENANT_PLACEHOLDERS for name in _PLACEHOLDER_RE.findall(value))


def _check_arn_shape(resource: str) -> None:
    """``arn:partition:service:region:account:resource`` (or ``{{user_pool_arn}}``) with no
    wildcard or policy variable in the first five fields: "*" alone, or "arn:aws:s3:*:*:...",
    would reach other accounts, Regions or services."""
    whole = _PLACEHOLDER_RE.fullmatch(resource)
    if whole is not None and whole.group(1) == "user_pool_arn":
        return
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"Resource {resource!r} must be an ARN (arn:{{{{partition}}}}:service:region:account:resource)")
    partition, service, region, account = parts[1:5]
    named = _PLACEHOLDER_RE.fullmatch(partition)
    if not ((named and named.group(1) == "partition") or partition in PARTITIONS):
        raise ValueError(f"Resource {resource!r}: the partition must be {{{{partition}}}} or one of {', '.join(sorted(PARTITIONS))}")
    for field, value in (("service", service), ("Region", region), ("account", account)):
        if any(w in value for w in _WILDCARDS) or (field == "service" and not value):
            raise ValueError(f"Resource {resource!r}: no wildcard or policy variable allowed in the {field} field")


def _check_tenant_value_delimited(value: str) -> None:
    """No wildcard before a tenant placeholder, and a delimiter between it and any wildcard after
    it: otherwise one tenant's string matches another tenant's resources."""
    for match in _PLACEHOLDER_RE.finditer(value):
        if match.group(1) not in TENANT_PLACEHOLDERS:
            continue
        before, after = value[: match.start()], value[match.end() :]
        if any(w in before for w in _WILDCARDS):
            raise ValueError(
                f"{value!r}: a wildcard or policy variable before {match.group(0)} matches other tenants' values too"
            )
        wildcard = min((i for i in (after.find(w) for w in _WILDCARDS) if i >= 0), default=None)
        delimiter = next((i for i, char in enumerate(after) if char in _DELIMITERS), None)
        if wildcard is not None and (delimiter is None or delimiter > wildcard):
            raise ValueError(
                f"{value!r}: put one of {' '.join(sorted(_DELIMITERS))} between {match.group(0)} and the wildcard "
                "after it; otherwise the tenant's value is a prefix that matches other tenants' values too"
            )


def _condition_values(condition: dict[str, dict[str, Any]] | None, *, scoping_only: bool) -> list[str]:
    """The string values of a Condition; with ``scoping_only``, only those of operators that can
    confine a statement: not negated ones (StringNotLike), not ...IfExists (true when the key is
    absent) and not ForAnyValue (true when one of several keys matches)."""
    values: list[str] = []
    for operator, keys in (condition or {}).items():
        if scoping_only and ("Not" in operator or operator.endswith("IfExists") or operator.startswith("ForAnyValue:")):
            continue
        for value in keys.values():
            values.extend(v for v in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(v, str))
    return values


def placeholders_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PLACEHOLDER_RE.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders_in(k) | placeholders_in(v) for k, v in value.items())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(placeholders_in(v) for v in value)) if value else set()
    return set()


def _describe(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    # loc is ("<tier>", "field", ...) because we validate tier by tier.
    tier, field = (loc[0], ".".join(loc[1:]) or "(template)") if loc else ("?", "?")
    return f"tier {tier!r}, field {field!r}: {error['msg']}"


def parse_tiers(data: dict[str, Any]) -> dict[str, TierTemplate]:
    """Validate a whole templates document ``{"tiers": {name: {...}}}``.

    Raises TemplateError naming every bad tier and field.
    """
    tiers = data.get("tiers") if isinstance(data, dict) else None
    if not isinstance(tiers, dict) or not tiers:
        raise TemplateError("the templates file needs a non-empty [tiers] table")
    unknown_top = set(data) - {"tiers"}
    if unknown_top:
        raise TemplateError(f"unknown top-level keys: {', '.join(sorted(unknown_top))}")
    parsed: dict[str, TierTemplate] = {}
    problems: list[str] = []
    for name, body in tiers.items():
        if not isinstance(body, dict):
            problems.append(f"tier {name!r}: must be a table")
            continue
        try:
            parsed[name] = TierTemplate.model_validate({**body, "name": name})
        except ValidationError as exc:
            errors = exc.errors()
            for error in errors:
                # A list whose only items are invalid is also reported "too short": noise.
                if error["type"] == "too_short" and any(
                    other["loc"][: len(error["loc"])] == error["loc"] and len(other["loc"]) > len(error["loc"])
                    for other in errors
                ):
                    continue
                problems.append(_describe({**error, "loc": (name, *error["loc"])}))
    if problems:
        raise TemplateError("invalid tier templates: " + "; ".join(problems))
    return parsed
