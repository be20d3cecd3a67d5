"""The naming and tagging rules of the service: every validator calls these, so none can disagree.

Sections, in order:

* tenant ids, the resource prefix and display names (what a caller or an operator chooses);
* AWS resource names the service derives (user pools, roles, secrets, domains) and the rules AWS
  enforces on them that the botocore models do *not* encode;
* names inside a tier template or a tenant's settings (app clients, extra roles, groups, identity
  providers, OAuth scopes);
* tags: the ownership tags nobody may override, the reserved prefixes, the character and length
  rules and the 50-tags-per-resource budget;
* redirect URLs (callback and logout URLs, of a template or a tenant);
* :class:`ResourceNames`, the deterministic names of one tenant's resources.

Deterministic names are what makes every step adopt-or-create: a step that was interrupted after
AWS created the resource finds it again by name (and ownership tags) instead of creating another.

Rules the botocore models encode (pattern/min/max) are checked against every request in tests;
the rules below are the ones the models do *not* encode, from the Cognito and IAM documentation:

* Cognito prefix domains: lower-case letters, digits and hyphens, 1-63 characters, no leading or
  trailing hyphen, and they may not contain ``aws``, ``amazon`` or ``cognito``. A prefix is unique
  per Region across all AWS customers.
* IAM role names: ``[\\w+=,.@-]``, 1-64 characters, unique per account *case-insensitively*.
* IAM paths: ``/`` or ``/segment/.../``, at most 512 characters.
* Cognito custom attribute names: 1-20 characters.
* Secrets Manager secret names: ASCII letters, digits and ``/_+=.@-``, 1-512 characters, and not
  ending with a hyphen and six characters (AWS appends ``-`` and six random characters to the ARN,
  so such a name is mistaken for a partial ARN).

A tenant's display name is the one name a person chooses: its rule (:func:`normalize_display_name`)
is here too, and every path that sets one (POST, PATCH, the CLI through them) goes through it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import urlsplit

from domain.errors import InvalidInput

# -- tenant ids, the resource prefix, display names --------------------------------------------

TENANT_ID_PATTERN = r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"
_TENANT_ID_RE = re.compile(TENANT_ID_PATTERN)
TENANT_ID_MAX_LENGTH = 40
RESOURCE_PREFIX_PATTERN = r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$"
_RESOURCE_PREFIX_RE = re.compile(RESOURCE_PREFIX_PATTERN)


def validate_tenant_id(tenant_id: str) -> str:
    if not _TENANT_ID_RE.fullmatch(tenant_id):
        raise InvalidInput(
            "tenant_id",
            f"must match {TENANT_ID_PATTERN} (3-40 lower-case letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen)",
        )
    if "--" in tenant_id:
        # Keeps names unambiguous: "a--b" would read like a separator inside derived names.
        raise InvalidInput("tenant_id", "must not contain two hyphens in a row")
    return tenant_id


def validate_resource_prefix(prefix: str) -> str:
    if not _RESOURCE_PREFIX_RE.fullmatch(prefix):
        raise InvalidInput("resource_prefix", f"must match {RESOURCE_PREFIX_PATTERN} (2-16 characters)")
    return prefix


# Longest display name (after trimming). Message templates are checked against Cognito's length
# limits with one this long filled in (domain/tiers.py).
DISPLAY_NAME_MAX_LENGTH = 128
DISPLAY_NAME_RULE = (
    f"1-{DISPLAY_NAME_MAX_LENGTH} characters; surrounding whitespace is trimmed and a name of whitespace "
    "only is refused, as is one holding a control or format character (bidi overrides, zero-width "
    "characters), a line or paragraph separator, or a private-use or unassigned character. Filled "
    "into the tier's Cognito messages, HTML-escaped in email bodies."
)


_MESSAGE_PLACEHOLDER = re.compile(r"\{####\}|\{username\}|\{##.*?##\}|\{\{.*?\}\}", re.IGNORECASE | re.DOTALL)


def normalize_display_name(value: object) -> str:
    """The display name as stored: surrounding whitespace trimmed, or InvalidInput naming
    ``display_name``.

    Refused anywhere in the name, leading and trailing places included: Unicode category C
    (controls such as NUL and tab, format characters such as U+202E RIGHT-TO-LEFT OVERRIDE and
    U+200B ZERO WIDTH SPACE, private use, unassigned, surrogates) and the separators U+2028 and
    U+2029. Cognito's message patterns refuse them, and in a name shown to people they only hide
    or reorder what is written. Spaces (category Zs) are kept inside the name and trimmed around
    it; a name that is only whitespace is refused.
    """
    if not isinstance(value, str):
        raise InvalidInput("display_name", "must be a string")
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if category[0] == "C" or category in ("Zl", "Zp"):
            raise InvalidInput(
                "display_name",
                f"must not contain control or format characters (U+{ord(char):04X} "
                f"{unicodedata.name(char, category)} at position {position})",
            )
    name = value.strip()
    if not name:
        raise InvalidInput("display_name", "must not be empty or only whitespace")
    if placeholder := _MESSAGE_PLACEHOLDER.search(name):
        # Cognito fills {####}, {username} and {##link##} into the very messages the name lands in
        # (and {{...}} is the templates' own syntax): a name holding one would change the message.
        raise InvalidInput("display_name", f"must not contain the message placeholder {placeholder.group(0)!r}")
    if len(name) > DISPLAY_NAME_MAX_LENGTH:
        raise InvalidInput("display_name", f"must be at most {DISPLAY_NAME_MAX_LENGTH} characters")
    return name


# -- AWS resource names ---------------------------------------------------------------------------

_DOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?$")
_DOMAIN_FORBIDDEN = ("aws", "amazon", "cognito")
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_IAM_PATH_RE = re.compile(r"^/(?:[\x21-\x2e\x30-\x7e]+/)*$")
# A customer managed policy: arn:<partition>:iam::<account>:policy/<optional/path/>name
# (AWS managed policies, account "aws", cannot be permissions boundaries the service controls).
IAM_POLICY_ARN_PATTERN = r"^arn:aws[-a-z]*:iam::\d{12}:policy/(?:[\x21-\x2e\x30-\x7e]+/)*[\w+=,.@-]{1,128}$"
_IAM_POLICY_ARN_RE = re.compile(IAM_POLICY_ARN_PATTERN, re.ASCII)
_SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_SECRET_NAME_LIKE_ARN_RE = re.compile(r"-.{6}$")


def is_valid_prefix_domain(domain: str) -> bool:
    return bool(_DOMAIN_RE.fullmatch(domain)) and not any(word in domain for word in _DOMAIN_FORBIDDEN)


def is_valid_role_name(name: str) -> bool:
    return bool(_ROLE_NAME_RE.fullmatch(name))


def is_valid_iam_path(path: str) -> bool:
    return len(path) <= 512 and bool(_IAM_PATH_RE.fullmatch(path))


def is_valid_iam_policy_arn(arn: str) -> bool:
    return len(arn) <= 2048 and bool(_IAM_POLICY_ARN_RE.fullmatch(arn))


def is_valid_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME_RE.fullmatch(name)) and not _SECRET_NAME_LIKE_ARN_RE.search(name)


# -- names inside a tier template or a tenant's settings --------------------------------------

TIER_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
TIER_NAME_MAX_LENGTH = 32
# An app client of a tier (``[app_clients.<name>]``): part of its Cognito client name and of its
# secret's name (``.../app-client/<name>/secret``), which ResourceNames.client_of_secret reads back.
_APP_CLIENT_NAME = r"[a-z][a-z0-9-]{0,19}"
APP_CLIENT_NAME_PATTERN = rf"^{_APP_CLIENT_NAME}$"
# An extra role of a tier (``[roles.<name>]``): the last part of an IAM role name.
EXTRA_ROLE_NAME_PATTERN = r"^[a-z][a-z0-9]{0,15}$"
RESERVED_ROLE_NAMES = ("auth", "unauth")
# Cognito's GroupNameType allows [\p{L}\p{M}\p{S}\p{N}\p{P}]{1,128}; the service keeps to the
# letters, digits and punctuation a group's name shares with IAM names (cognito:groups claims).
GROUP_NAME_PATTERN = r"^[\w+=,.@-]+$"
GROUP_NAME_MAX_LENGTH = 128
# A tenant's SAML or OIDC provider: a subset of Cognito's ProviderNameTypeV2 (1-32 characters)
# that also fits Secrets Manager names, since a provider's secret is named after it.
PROVIDER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,30}[A-Za-z0-9]$"
# botocore's ScopeType (an app client's OAuth scopes, a provider's authorize scopes) and
# ResourceServerIdentifierType: visible ASCII without '"' or '\'.
SCOPE_PATTERN = r"^[\x21\x23-\x5B\x5D-\x7E]{1,256}$"


def is_valid_scope(scope: str) -> bool:
    return bool(re.fullmatch(SCOPE_PATTERN, scope))


# -- tags ----------------------------------------------------------------------------------------

# Tag keys every taggable resource carries. The ownership tag is what adoption and the orphan
# sweep trust: a resource without it is never adopted or deleted.
TAG_NAMESPACE = "tenants:"
TAG_TENANT_ID = f"{TAG_NAMESPACE}tenant-id"
TAG_MANAGED_BY = f"{TAG_NAMESPACE}managed-by"
MANAGED_BY_VALUE = "tenant-identity-provisioner"
# Keys nobody else may set, in any case: aws: is AWS's own, tenants: the service's (ownership).
RESERVED_TAG_PREFIXES = ("aws:", TAG_NAMESPACE)
# 50 tags per resource on IAM roles (tagListType), Cognito user and identity pools and Secrets
# Manager secrets alike. The ownership tags take theirs first; a tier's tags and a tenant's own
# share what is left.
MAX_TAGS_PER_RESOURCE = 50
OWNERSHIP_TAG_COUNT = 2
MAX_EXTRA_TAGS = MAX_TAGS_PER_RESOURCE - OWNERSHIP_TAG_COUNT
TAG_KEY_MAX_LENGTH = 128
TAG_VALUE_MAX_LENGTH = 256
# IAM's tagKeyType / tagValueType, the strictest of the four services (Cognito's and Secrets
# Manager's models give lengths only): letters, separators and numbers of any script.
TAG_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
TAG_CHARACTERS = "letters, digits and spaces (of any script) and _.:/=+-@"
TAG_RULE = (
    f"keys 1-{TAG_KEY_MAX_LENGTH}, values 0-{TAG_VALUE_MAX_LENGTH} {TAG_CHARACTERS}; keys starting with "
    f"{' or '.join(RESERVED_TAG_PREFIXES)} (in any case) are reserved; {MAX_TAGS_PER_RESOURCE} tags per "
    f"resource in all, {OWNERSHIP_TAG_COUNT} of them the service's ownership tags"
)


def ownership_tags(tenant_id: str) -> dict[str, str]:
    return {TAG_TENANT_ID: tenant_id, TAG_MANAGED_BY: MANAGED_BY_VALUE}


def is_owned_by(tags: dict[str, str], tenant_id: str) -> bool:
    return tags.get(TAG_MANAGED_BY) == MANAGED_BY_VALUE and tags.get(TAG_TENANT_ID) == tenant_id


def _tag_text_ok(text: str) -> bool:
    """``text`` matches :data:`TAG_PATTERN` (Python's ``re`` has no ``\\p{...}`` classes)."""
    return all(unicodedata.category(c)[0] in "LZN" or c in _TAG_PUNCTUATION for c in text)


def is_reserved_tag_key(key: str) -> bool:
    return key.lower().startswith(RESERVED_TAG_PREFIXES)


def check_tag(key: object, value: object, *, field: str = "tags") -> None:
    """InvalidInput naming ``<field>.<key>`` unless ``key`` = ``value`` is a tag AWS takes and
    nobody but AWS and this service may set ``key``."""
    where = f"{field}.{key}"
    if not isinstance(key, str) or not 1 <= len(key) <= TAG_KEY_MAX_LENGTH or not _tag_text_ok(key):
        raise InvalidInput(where, f"tag keys are 1-{TAG_KEY_MAX_LENGTH} {TAG_CHARACTERS}")
    if is_reserved_tag_key(key):
        raise InvalidInput(
            where, f"{key!r} is reserved: tag keys starting with {' or '.join(RESERVED_TAG_PREFIXES)} belong to AWS and to this service"
        )
    if not isinstance(value, str) or len(value) > TAG_VALUE_MAX_LENGTH or not _tag_text_ok(value):
        raise InvalidInput(where, f"tag values are 0-{TAG_VALUE_MAX_LENGTH} {TAG_CHARACTERS}")


def check_tags(tags: object, *, field: str = "tags", limit: int = MAX_EXTRA_TAGS) -> dict[str, str]:
    """``tags`` as a dict, or InvalidInput naming ``field`` (not an object, more than ``limit``)
    or ``<field>.<key>`` (see :func:`check_tag`)."""
    if not isinstance(tags, Mapping):
        raise InvalidInput(field, "must be an object of tag keys to values")
    if len(tags) > limit:
        raise InvalidInput(
            field,
            f"at most {limit} tags (AWS allows {MAX_TAGS_PER_RESOURCE} per resource; the service's ownership tags "
            f"take {OWNERSHIP_TAG_COUNT} and a tier's own tags come first)",
        )
    for key, value in tags.items():
        check_tag(key, value, field=field)
    return dict(tags)


def extra_tag_room(template_tags: Mapping[str, str]) -> int:
    """How many tags a tenant may add to a tier whose template carries ``template_tags``."""
    return MAX_EXTRA_TAGS - len(template_tags)


# -- redirect URLs ------------------------------------------------------------------------------

# Cognito's CallbackURLs and LogoutURLs: at most 100 each, 1-1024 characters (botocore model).
MAX_URLS = 100
MAX_URL_LENGTH = 1024
# Schemes an app's own redirect scheme may not be: the web's, and those that run or read locally.
_NOT_APP_SCHEMES = frozenset({"http", "https", "javascript", "data", "file", "vbscript"})
_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]*")


def is_allowed_url(url: str, *, app_schemes: bool = False) -> bool:
    """Whether Cognito takes ``url`` as a callback or logout URL, as the service allows it.

    Every URL: 1-1024 characters of botocore's RedirectUrlType (``[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]``:
    no spaces, controls or format characters), no ``#fragment`` (Cognito refuses one), and a URL
    ``urlsplit`` can read (a port in range). ``https://`` with a host, or ``http://`` only to
    ``localhost`` (Cognito allows it for development); the scheme in any case (RFC 3986 3.1).
    With ``app_schemes`` (a tier template's defaults), also an app's own scheme
    (``myapp://callback``), never ``javascript:``, ``data:``, ``file:`` or ``vbscript:``. A
    tenant's own URLs are https-only on purpose: its app clients are the web clients of its tier.
    """
    if not 1 <= len(url) <= MAX_URL_LENGTH or "#" in url:
        return False
    if any(unicodedata.category(c)[0] not in "LMSNP" for c in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    if parts.scheme == "https":
        return bool(host)
    if parts.scheme == "http":
        return host == "localhost"
    rest = url[len(parts.scheme) + 1 :]
    return (
        app_schemes
        and bool(_SCHEME_RE.fullmatch(parts.scheme))
        and parts.scheme not in _NOT_APP_SCHEMES
        and rest.startswith("//")
        and len(rest) > 2
    )


# -- the names of one tenant's resources ------------------------------------------------------


class ResourceNames:
    """All names derived from one tenant id and the deployment's resource prefix."""

    def __init__(self, prefix: str, tenant_id: str) -> None:
        self.prefix = validate_resource_prefix(prefix)
        self.tenant_id = validate_tenant_id(tenant_id)

    @property
    def user_pool(self) -> str:
        return f"{self.prefix}-{self.tenant_id}"

    @property
    def app_client(self) -> str:
        return f"{self.prefix}-{self.tenant_id}-app"

    @property
    def identity_pool(self) -> str:
        return f"{self.prefix}-{self.tenant_id}"

    def role(self, kind: str) -> str:
        """``kind`` is ``auth`` or ``unauth``. At most 16 + 1 + 40 + 7 = 64 characters."""
        name = f"{self.prefix}-{self.tenant_id}-{kind}"
        if not is_valid_role_name(name):  # pragma: no cover - guaranteed by the two patterns
            raise InvalidInput("tenant_id", f"derived role name {name!r} breaks IAM's rules")
        return name

    def role_policy(self, kind: str) -> str:
        return f"{self.prefix}-{self.tenant_id}-{kind}-policy"

    def extra_role(self, role: str) -> str:
        """A tier's extra role (``[roles.<role>]``, 1-16 lower-case letters and digits):
        ``<prefix>-<tenant_id>-<role>`` when that fits IAM's 64 characters, else
        ``<prefix>-t<hash of tenant_id>-<role>`` (at most 16 + 2 + 24 + 1 + 16 = 59)."""
        name = f"{self.prefix}-{self.tenant_id}-{role}"
        if len(name) > 64:
            digest = hashlib.sha256(self.tenant_id.encode()).hexdigest()[:24]
            name = f"{self.prefix}-t{digest}-{role}"
        if not is_valid_role_name(name):
            raise InvalidInput("roles", f"derived role name {name!r} breaks IAM's rules")
        return name

    def extra_role_of(self, name: str) -> str | None:
        """The ``[roles]`` name whose role is called ``name`` (case-insensitively, as IAM), or None."""
        lowered = name.casefold()
        digest = hashlib.sha256(self.tenant_id.encode()).hexdigest()[:24]
        for head in (f"{self.prefix}-{self.tenant_id}-", f"{self.prefix}-t{digest}-"):
            role = lowered[len(head) :] if lowered.startswith(head) else ""
            if re.fullmatch(r"[a-z0-9]{1,16}", role) and role not in ("auth", "unauth") and self.extra_role(role) == lowered:
                return role
        return None

    def extra_role_policy(self, role: str) -> str:
        return f"{self.extra_role(role)}-policy"

    def named_app_client(self, client: str, *, primary: bool) -> str:
        """The primary client keeps ``<prefix>-<tenant_id>-app`` (tenants provisioned before
        multi-client tiers keep theirs); the others are ``<prefix>-<tenant_id>-app-<client>``."""
        return self.app_client if primary else f"{self.app_client}-{client}"

    def client_of_secret(self, name: str) -> str | None:
        """The app client (not the primary) whose secret is called ``name``, or None."""
        match = re.fullmatch(rf"{re.escape(self.prefix)}/{re.escape(self.tenant_id)}/app-client/({_APP_CLIENT_NAME})/secret", name)
        return match.group(1) if match else None

    def provider_of_secret(self, name: str) -> str | None:
        """The tenant identity provider whose client secret is called ``name``, or None."""
        match = re.fullmatch(rf"{re.escape(self.prefix)}/{re.escape(self.tenant_id)}/idp/([A-Za-z0-9._-]{{1,32}})/secret", name)
        return match.group(1) if match else None

    def named_client_secret(self, client: str, *, primary: bool) -> str:
        """``<prefix>/<tenant_id>/app-client/secret`` for the primary client (as before), else
        ``<prefix>/<tenant_id>/app-client/<client>/secret``: at most 16 + 1 + 40 + 39 = 96."""
        if primary:
            return self.client_secret
        name = f"{self.prefix}/{self.tenant_id}/app-client/{client}/secret"
        if not is_valid_secret_name(name):
            raise InvalidInput("app_clients", f"derived secret name {name!r} breaks Secrets Manager's rules")
        return name

    @property
    def client_secret(self) -> str:
        """The Secrets Manager name of the app client secret: ``<prefix>/<tenant_id>/app-client/secret``.

        Not ``.../app-client-secret``: a name ending in a hyphen and six characters reads as a
        partial ARN to Secrets Manager. At most 16 + 1 + 40 + 18 = 75 of the 512 characters.
        """
        name = f"{self.prefix}/{self.tenant_id}/app-client/secret"
        if not is_valid_secret_name(name):  # pragma: no cover - guaranteed by the two patterns
            raise InvalidInput("tenant_id", f"derived secret name {name!r} breaks Secrets Manager's rules")
        return name

    def identity_provider_secret(self, provider: str) -> str:
        """The Secrets Manager name of a tenant identity provider's client secret:
        ``<prefix>/<tenant_id>/idp/<provider>/secret`` (provider names fit secret names:
        domain/tenant_settings.py). At most 16 + 1 + 40 + 5 + 32 + 7 = 101 characters."""
        name = f"{self.prefix}/{self.tenant_id}/idp/{provider}/secret"
        if not is_valid_secret_name(name):
            raise InvalidInput(f"identity_providers.{provider}", f"derived secret name {name!r} breaks Secrets Manager's rules")
        return name

    @property
    def identity_provider_secrets_prefix(self) -> str:
        """``<prefix>/<tenant_id>/idp/``: the start of every identity-provider secret name of this
        tenant and of no other (the closing slash keeps ``acme`` from matching ``acme-corp``)."""
        return f"{self.prefix}/{self.tenant_id}/idp/"

    @property
    def hosted_ui_domain(self) -> str:
        """A Cognito prefix domain for the tenant.

        ``<prefix>-<tenant_id>`` when that is a valid prefix domain; a tenant id containing a
        forbidden word (``laws-firm`` contains ``aws``) gets ``<prefix>-t-<hash>`` instead: hex
        digits can never spell ``aws``, ``amazon`` or ``cognito``.
        """
        candidate = f"{self.prefix}-{self.tenant_id}"
        if is_valid_prefix_domain(candidate):
            return candidate
        digest = hashlib.sha256(self.tenant_id.encode()).hexdigest()[:20]
        fallback = f"{self.prefix}-t-{digest}"
        if not is_valid_prefix_domain(fallback):
            raise InvalidInput("resource_prefix", "the resource prefix cannot form a Cognito prefix domain")
        return fallback
