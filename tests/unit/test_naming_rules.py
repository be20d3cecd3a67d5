"""The naming and tagging rules (domain/naming.py), table by table, and every path that validates
a tag or a URL judging each input as the rules do.

Before the rules were one module, a tier template checked tags with an ASCII-only regex while a
tenant's settings followed IAM's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``, and a template's URLs went
through a regex that let through what the tenant path refused (a format character, no host, a
port out of range). The tables marked ``disagreed`` are those inputs.
"""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import InvalidInput, TemplateError
from domain.naming import (
    MAX_EXTRA_TAGS,
    MAX_TAGS_PER_RESOURCE,
    RESERVED_TAG_PREFIXES,
    TAG_MANAGED_BY,
    TAG_TENANT_ID,
    check_tag,
    check_tags,
    extra_tag_room,
    is_allowed_url,
    is_reserved_tag_key,
    ownership_tags,
)
from domain.tenant_settings import parse_settings
from domain.tiers import parse_tiers
from tests.unit.test_tiers import doc, minimal

# -- tags ------------------------------------------------------------------------------------------

# (key, value): accepted by AWS (IAM's tagKeyType/tagValueType, the strictest of the services).
GOOD_TAGS = [
    ("cost-center", "cc-1234"),
    ("team", ""),  # values may be empty
    ("a b", "c d"),
    ("k" * 128, "v" * 256),
    ("path/like:key=+@_.-", "x"),
    ("équipe", "Données clients"),  # disagreed: letters of any script
    ("コスト", "١٢٣"),  # disagreed: digits of any script
    ("k", "no\u00a0break"),  # disagreed: any space separator (Zs)
    ("k", "½"),  # disagreed: numbers (No)
]
DISAGREED_TAGS = GOOD_TAGS[5:]
# (key, value): refused; the error names tags.<key>.
BAD_TAGS = [
    ("", "v"),
    ("k" * 129, "v"),
    ("k", "v" * 257),
    ("bad<key>", "v"),
    ("bad{key}", "v"),
    ("k", "semi;colon"),
    ("k", "tab\tx"),
    ("k", "zero\u200bwidth"),  # a format character (Cf)
    ("k", "€"),  # a symbol (Sc)
    ("aws:cloudformation:stack-name", "x"),
    ("AWS:x", "y"),
    ("tenants:tenant-id", "other"),
    ("TENANTS:managed-by", "me"),
    ("Tenants:anything", "x"),
]


@pytest.mark.parametrize(("key", "value"), GOOD_TAGS)
def test_tags_aws_accepts_pass_the_rules(key: str, value: str) -> None:
    check_tag(key, value)
    assert check_tags({key: value}) == {key: value}


@pytest.mark.parametrize(("key", "value"), BAD_TAGS)
def test_tags_aws_or_the_service_refuses_are_refused_naming_the_tag(key: str, value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_tags({key: value})
    assert caught.value.field == f"tags.{key}"


def test_the_ownership_tag_keys_are_reserved_in_any_case() -> None:
    for key in (TAG_TENANT_ID, TAG_MANAGED_BY, TAG_TENANT_ID.upper(), TAG_MANAGED_BY.title()):
        assert is_reserved_tag_key(key)
    assert set(ownership_tags("acme")) == {TAG_TENANT_ID, TAG_MANAGED_BY}
    assert all(key.startswith(RESERVED_TAG_PREFIXES) for key in ownership_tags("acme"))


@pytest.mark.parametrize("tags", [None, ["a"], "k=v", 3])
def test_tags_that_are_not_an_object_are_refused_naming_the_field(tags: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_tags(tags, field="tags")
    assert caught.value.field == "tags"


def test_the_tag_budget_is_50_per_resource_less_the_ownership_tags_and_the_templates() -> None:
    assert MAX_TAGS_PER_RESOURCE == 50 and MAX_EXTRA_TAGS == 50 - len(ownership_tags("acme"))
    check_tags({f"k{i}": "v" for i in range(MAX_EXTRA_TAGS)})
    with pytest.raises(InvalidInput) as caught:
        check_tags({f"k{i}": "v" for i in range(MAX_EXTRA_TAGS + 1)})
    assert caught.value.field == "tags" and f"at most {MAX_EXTRA_TAGS}" in str(caught.value)
    assert extra_tag_room({"a": "1", "b": "2"}) == MAX_EXTRA_TAGS - 2


# -- every path that validates tags judges them alike ---------------------------------------------


def tenant_verdict(tags: dict[str, str]) -> str | None:
    """The field a tenant's settings (POST and PATCH bodies) are refused on, or None."""
    try:
        parse_settings({"tags": tags})
    except InvalidInput as exc:
        return exc.field
    return None


def template_verdict(**fields: Any) -> str | None:
    """The tier-template loader's message when it refuses a tier, or None."""
    try:
        parse_tiers(doc(gold=minimal(**fields)))
    except TemplateError as exc:
        return exc.message
    return None


@pytest.mark.parametrize(("key", "value"), GOOD_TAGS)
def test_a_tag_aws_accepts_is_accepted_in_a_template_and_from_a_tenant(key: str, value: str) -> None:
    assert template_verdict(tags={key: value}) is None
    assert tenant_verdict({key: value}) is None


@pytest.mark.parametrize(("key", "value"), BAD_TAGS)
def test_a_tag_aws_refuses_is_refused_in_a_template_and_from_a_tenant(key: str, value: str) -> None:
    message = template_verdict(tags={key: value})
    assert message is not None and f"tags.{key}" in message
    assert tenant_verdict({key: value}) == f"tags.{key}"


def test_too_many_tags_are_refused_in_a_template_and_from_a_tenant_alike() -> None:
    tags = {f"k{i}": "v" for i in range(MAX_EXTRA_TAGS + 1)}
    message = template_verdict(tags=tags)
    assert message is not None and f"at most {MAX_EXTRA_TAGS}" in message
    assert tenant_verdict(tags) == "tags"
    fits = {f"k{i}": "v" for i in range(MAX_EXTRA_TAGS)}
    assert template_verdict(tags=fits) is None and tenant_verdict(fits) is None


# -- redirect URLs ---------------------------------------------------------------------------------

# (url, a tenant may use it, a template may use it)
URLS = [
    ("https://app.example.com/cb", True, True),
    ("https://app.example.com/cb?x=1", True, True),
    ("http://localhost:3000/cb", True, True),
    ("http://localhost/cb", True, True),
    ("https://bücher.example/cb", True, True),
    ("HTTPS://app.example.com/cb", True, True),  # disagreed: schemes are case-insensitive (RFC 3986)
    ("com.example.app://callback", False, True),  # an app's own scheme: templates only
    ("myapp:///path", False, True),
    ("http://app.example.com/cb", False, False),
    ("HTTP://app.example.com/cb", False, False),
    ("http://localhost.evil.example/cb", False, False),
    ("https://app.example.com/cb#frag", False, False),
    ("https://app.example.com/c b", False, False),
    ("https://app.example.com/" + "x" * 1024, False, False),
    ("https://", False, False),
    ("ftp://app.example.com/cb", False, True),  # to a template, any scheme but the web's and the local ones
    ("javascript://alert(1)", False, False),
    ("JavaScript://alert(1)", False, False),
    ("data://text/html,x", False, False),
    ("myapp:", False, False),
    ("https://app.example.com/\u200bcb", False, False),  # disagreed: a format character (Cf)
    ("https://app.example.com/\x7fcb", False, False),  # disagreed: a control character
    ("https:///no-host", False, False),  # disagreed: no host
    ("http://localhost:99999/cb", False, False),  # disagreed: port out of range
    ("myapp://call\u2028back", False, False),  # a line separator
]
# Accepted by the template loader before, refused from a tenant (a 422 naming callback_urls[0]).
DISAGREED_URLS = [url for url, _, _ in URLS[-5:-1]]


@pytest.mark.parametrize(("url", "tenant", "template"), URLS)
def test_redirect_url_rules(url: str, tenant: bool, template: bool) -> None:
    assert is_allowed_url(url) is tenant
    assert is_allowed_url(url, app_schemes=True) is template


WEB = {"oauth_flows": ["code"], "oauth_scopes": ["openid"]}


@pytest.mark.parametrize(("url", "tenant", "template"), URLS)
def test_a_url_is_judged_by_the_template_loader_and_the_tenant_path_as_the_rules_say(url: str, tenant: bool, template: bool) -> None:
    message = template_verdict(app_clients={"web": {**WEB, "callback_urls": [url]}}, hosted_ui_domain=True)
    assert (message is None) is template, message
    if not template:
        assert message is not None and "callback_urls" in message
    assert (tenant_verdict_urls(url) is None) is tenant


def tenant_verdict_urls(url: str) -> str | None:
    try:
        parse_settings({"callback_urls": [url]})
    except InvalidInput as exc:
        assert exc.field == "callback_urls[0]"
        return exc.field
    return None
