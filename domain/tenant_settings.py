"""Per-tenant settings of the onboarding request: URLs, extra tags and the tenant's own sign-in.

A tenant brings what is its own: the callback and logout URLs of its application, extra tags for
its resources, and identity providers (an enterprise SAML or OIDC provider, social ones) attached
to its user pool and allowed on its app clients. This module parses and validates them from plain
JSON (the request body), applies RFC 7396 merge patches to them, and gives the registry form.

Secrets (OIDC and social client secrets) are split off while parsing: ``TenantSettings`` never
holds one, only the ARN of the AWS Secrets Manager secret that does. Every rule here is one AWS
enforces (botocore's cognito-idp model, the Cognito and tagging documentation) or one this service
adds on purpose (https only; the service's own tag prefix is reserved); each failure names its
field, e.g. ``identity_providers.acme.client_id``. The rules a tier template shares (tags, URLs,
scopes, provider names) are domain/naming.py's, so a template and a tenant are judged alike.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from domain.errors import InvalidInput
from domain.naming import (
    MAX_EXTRA_TAGS,
    MAX_URL_LENGTH,
    MAX_URLS,
    PROVIDER_NAME_PATTERN,
    SCOPE_PATTERN,
    check_tags,
    is_allowed_url,
)

SOCIAL_TYPES = ("Google", "Facebook", "LoginWithAmazon")
PROVIDER_TYPES = ("SAML", "OIDC", *SOCIAL_TYPES)
# Fields a provider of each type may carry (besides ``type`` and ``attribute_mapping``).
_FIELDS = {
    "SAML": {"metadata_url", "metadata_document", "idp_signout"},
    "OIDC": {"issuer", "client_id", "client_secret", "scopes", "attributes_request_method"},
    **{t: {"client_id", "client_secret", "scopes"} for t in SOCIAL_TYPES},
}
_WITH_SECRET = {"OIDC", *SOCIAL_TYPES}
_COMMON = {"type", "attribute_mapping"}
MAX_PROVIDERS = 20
_PROVIDER_NAME_RE = re.compile(PROVIDER_NAME_PATTERN)
_SCOPE_RE = re.compile(SCOPE_PATTERN)
_TOKEN_RE = re.compile(r"^[\x21-\x7E]{1,256}$")  # client ids: visible ASCII, no spaces
_ATTRIBUTE_RE = re.compile(r"^[\w:.-]{1,32}$", re.ASCII)  # a user pool attribute (custom:...)


@dataclass(frozen=True, slots=True)
class IdentityProviderSettings:
    """One provider, as Cognito's CreateIdentityProvider takes it, minus its secret."""

    name: str
    type: str
    client_id: str | None = None
    scopes: tuple[str, ...] = ()
    issuer: str | None = None
    attributes_request_method: str | None = None
    metadata_url: str | None = None
    metadata_document: str | None = None
    idp_signout: bool | None = None
    attribute_mapping: dict[str, str] = field(default_factory=dict)
    # Where its client secret is kept (AWS Secrets Manager); never the secret itself.
    client_secret_arn: str | None = None

    @property
    def has_secret(self) -> bool:
        return self.type in _WITH_SECRET

    def public(self) -> dict[str, Any]:
        """The registry and GET form: no secret, the secret's ARN instead."""
        data: dict[str, Any] = {"type": self.type}
        for key in ("client_id", "issuer", "attributes_request_method", "metadata_url", "metadata_document", "idp_signout"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.scopes:
            data["scopes"] = list(self.scopes)
        if self.attribute_mapping:
            data["attribute_mapping"] = dict(self.attribute_mapping)
        if self.client_secret_arn is not None:
            data["client_secret_arn"] = self.client_secret_arn
        return data

    def without_arn(self) -> IdentityProviderSettings:
        return IdentityProviderSettings(**{**_fields(self), "client_secret_arn": None})

    def provider_details(self, client_secret: str | None) -> dict[str, str]:
        """Cognito's ProviderDetails for this provider (the secret read back from Secrets Manager)."""
        if self.type == "SAML":
            details = {"MetadataURL": self.metadata_url} if self.metadata_url else {"MetadataFile": self.metadata_document or ""}
            if self.idp_signout is not None:
                details["IDPSignout"] = "true" if self.idp_signout else "false"
            return details
        # Facebook takes its scopes comma-separated, the others space-separated.
        separator = "," if self.type == "Facebook" else " "
        details = {"client_id": self.client_id or "", "authorize_scopes": separator.join(self.scopes)}
        if client_secret is not None:
            details["client_secret"] = client_secret
        if self.type == "OIDC":
            details["oidc_issuer"] = self.issuer or ""
            details["attributes_request_method"] = self.attributes_request_method or "GET"
        return details


def _fields(provider: IdentityProviderSettings) -> dict[str, Any]:
    return {name: getattr(provider, name) for name in IdentityProviderSettings.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class TenantSettings:
    callback_urls: tuple[str, ...] = ()
    logout_urls: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    identity_providers: tuple[IdentityProviderSettings, ...] = ()  # ordered by name

    def public(self) -> dict[str, Any]:
        return {
            "callback_urls": list(self.callback_urls),
            "logout_urls": list(self.logout_urls),
            "tags": dict(self.tags),
            "identity_providers": {p.name: p.public() for p in self.identity_providers},
        }

    def provider(self, name: str) -> IdentityProviderSettings | None:
        return next((p for p in self.identity_providers if p.name == name), None)

    @property
    def provider_names(self) -> list[str]:
        return [p.name for p in self.identity_providers]

    def same_request_as(self, other: TenantSettings) -> bool:
        """Equal but for where secrets are kept (secrets are compared by the caller)."""
        return _strip_arns(self) == _strip_arns(other)


def _strip_arns(settings: TenantSettings) -> TenantSettings:
    return TenantSettings(
        settings.callback_urls, settings.logout_urls, settings.tags, tuple(p.without_arn() for p in settings.identity_providers)
    )


@dataclass(frozen=True, slots=True)
class ParsedSettings:
    settings: TenantSettings
    # Provider name -> client secret sent in this request (the only place a secret is held).
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"ParsedSettings(settings={self.settings!r}, secrets=[{len(self.secrets)} redacted])"


# -- RFC 7396 --------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """JSON Merge Patch (RFC 7396 section 2): objects merge member by member, ``null`` removes a
    member, anything else (arrays included) replaces the target outright."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- parsing -----------------------------------------------------------------------------------


def parse_settings(
    data: dict[str, Any], *, stored: TenantSettings | None = None, max_tags: int = MAX_EXTRA_TAGS
) -> ParsedSettings:
    """Validate ``data`` (``callback_urls``, ``logout_urls``, ``tags``, ``identity_providers``;
    others are ignored). ``stored`` is the tenant's current settings when ``data`` is a patched
    version of them: a provider it had keeps its secret (by ARN) unless ``data`` sends a new one,
    and keeps its type."""
    secrets: dict[str, str] = {}
    providers: list[IdentityProviderSettings] = []
    raw_providers = data.get("identity_providers") or {}
    if not isinstance(raw_providers, dict):
        raise InvalidInput("identity_providers", "must be an object keyed by provider name")
    if len(raw_providers) > MAX_PROVIDERS:
        raise InvalidInput("identity_providers", f"at most {MAX_PROVIDERS} providers")
    for name in sorted(raw_providers):
        before = stored.provider(name) if stored is not None else None
        provider, secret = _parse_provider(name, raw_providers[name], before)
        providers.append(provider)
        if secret is not None:
            secrets[name] = secret
    settings = TenantSettings(
        callback_urls=_urls(data.get("callback_urls"), "callback_urls"),
        logout_urls=_urls(data.get("logout_urls"), "logout_urls"),
        tags=check_tags(data["tags"], limit=max_tags) if data.get("tags") is not None else {},
        identity_providers=tuple(providers),
    )
    return ParsedSettings(settings, secrets)


def settings_from_json(data: dict[str, Any] | None) -> TenantSettings:
    """The registry form back (trusted: it was validated on the way in)."""
    data = data or {}
    providers = []
    for name, body in sorted((data.get("identity_providers") or {}).items()):
        body = dict(body)
        providers.append(
            IdentityProviderSettings(
                name=name,
                type=body.pop("type"),
                scopes=tuple(body.pop("scopes", ())),
                attribute_mapping=dict(body.pop("attribute_mapping", {})),
                **body,
            )
        )
    return TenantSettings(
        callback_urls=tuple(data.get("callback_urls") or ()),
        logout_urls=tuple(data.get("logout_urls") or ()),
        tags=dict(data.get("tags") or {}),
        identity_providers=tuple(providers),
    )


def _text(value: Any, where: str, *, max_length: int, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    if value is None:
        raise InvalidInput(where, "required")
    if not isinstance(value, str):
        raise InvalidInput(where, "must be a string")
    if not 1 <= len(value) <= max_length:
        raise InvalidInput(where, f"must be 1 to {max_length} characters")
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise InvalidInput(where, "must not contain control characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidInput(where, what or f"must match {pattern.pattern}")
    return value


def _urls(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInput(where, "must be a list of URLs")
    if len(value) > MAX_URLS:
        raise InvalidInput(where, f"at most {MAX_URLS} URLs (Cognito's limit)")
    seen: list[str] = []
    for i, url in enumerate(value):
        at = f"{where}[{i}]"
        _text(url, at, max_length=MAX_URL_LENGTH)
        if not is_allowed_url(url):
            raise InvalidInput(at, "must be an https URL without a fragment (http only for localhost)")
        if url in seen:
            raise InvalidInput(at, "duplicate URL")
        seen.append(url)
    return tuple(seen)


def _parse_provider(
    name: str, body: Any, before: IdentityProviderSettings | None
) -> tuple[IdentityProviderSettings, str | None]:
    where = f"identity_providers.{name}"
    if not isinstance(body, dict):
        raise InvalidInput(where, "must be an object")
    kind = body.get("type")
    if kind not in PROVIDER_TYPES:
        raise InvalidInput(f"{where}.type", f"must be one of {', '.join(PROVIDER_TYPES)}")
    if before is not None and before.type != kind:
        raise InvalidInput(
            f"{where}.type", "a provider's type cannot change; remove the provider in one change and add it under another name"
        )
    if kind in SOCIAL_TYPES:
        if name != kind:
            raise InvalidInput(where, f"a {kind} provider must be named {kind!r}")
    elif not _PROVIDER_NAME_RE.fullmatch(name) or name.upper() == "COGNITO" or name in SOCIAL_TYPES:
        raise InvalidInput(where, f"a SAML or OIDC provider's name must match {PROVIDER_NAME_PATTERN} and not be COGNITO")
    allowed = _FIELDS[kind] | _COMMON | ({"client_secret_arn"} if before is not None else set())
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0]}", f"not a field of a {kind} provider")

    values: dict[str, Any] = {}
    secret: str | None = None
    if kind == "SAML":
        url, document = body.get("metadata_url"), body.get("metadata_document")
        if (url is None) == (document is None):
            raise InvalidInput(where, "give exactly one of metadata_url and metadata_document")
        if url is not None:
            _text(url, f"{where}.metadata_url", max_length=MAX_URL_LENGTH)
            if not is_allowed_url(url) or not url.startswith("https://"):
                raise InvalidInput(f"{where}.metadata_url", "must be an https URL")
            values["metadata_url"] = url
        else:
            text = _text(document, f"{where}.metadata_document", max_length=131072) if isinstance(document, str) else document
            if not isinstance(text, str) or not text.lstrip().startswith("<") or "EntityDescriptor" not in text:
                raise InvalidInput(f"{where}.metadata_document", "must be a SAML metadata XML document (an EntityDescriptor)")
            values["metadata_document"] = text
        if "idp_signout" in body:
            if not isinstance(body["idp_signout"], bool):
                raise InvalidInput(f"{where}.idp_signout", "must be true or false")
            values["idp_signout"] = body["idp_signout"]
    else:
        values["client_id"] = _text(body.get("client_id"), f"{where}.client_id", max_length=256, pattern=_TOKEN_RE,
                                    what="must be visible ASCII characters without spaces")
        values["scopes"] = _scopes(body.get("scopes"), f"{where}.scopes", oidc=kind == "OIDC")
        if "client_secret" in body:
            secret = _text(body["client_secret"], f"{where}.client_secret", max_length=4096)
        elif before is None or before.client_secret_arn is None:
            raise InvalidInput(f"{where}.client_secret", "required for a new provider")
        if kind == "OIDC":
            issuer = _text(body.get("issuer"), f"{where}.issuer", max_length=MAX_URL_LENGTH)
            if not issuer.startswith("https://") or not is_allowed_url(issuer):
                raise InvalidInput(f"{where}.issuer", "must be an https URL")
            values["issuer"] = issuer
            method = body.get("attributes_request_method", "GET")
            if method not in ("GET", "POST"):
                raise InvalidInput(f"{where}.attributes_request_method", "must be GET or POST")
            values["attributes_request_method"] = method
    values["attribute_mapping"] = _mapping(body.get("attribute_mapping"), f"{where}.attribute_mapping")
    arn = before.client_secret_arn if before is not None and kind in _WITH_SECRET else None
    return IdentityProviderSettings(name=name, type=kind, client_secret_arn=arn, **values), secret


def _scopes(value: Any, where: str, *, oidc: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= 50:
        raise InvalidInput(where, "must be a list of 1 to 50 scopes")
    for i, scope in enumerate(value):
        _text(scope, f"{where}[{i}]", max_length=256, pattern=_SCOPE_RE, what="a scope is visible ASCII without spaces, quotes or backslashes")
    if len(set(value)) != len(value):
        raise InvalidInput(where, "duplicate scope")
    if oidc and "openid" not in value:
        raise InvalidInput(where, "an OIDC provider's scopes must include openid")
    return tuple(value)


def _mapping(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 50:
        raise InvalidInput(where, "must be an object of at most 50 user pool attribute -> provider attribute")
    for key, attribute in value.items():
        if not _ATTRIBUTE_RE.fullmatch(key):
            raise InvalidInput(f"{where}.{key}", "a user pool attribute name is 1-32 letters, digits and _:.-")
        _text(attribute, f"{where}.{key}", max_length=1024)
    return dict(value)
