"""Per-tenant settings (domain/tenant_settings.py): every field refused with its name on bad
input, the registry form never holding a secret, and RFC 7396 merge patches."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import InvalidInput
from domain.tenant_settings import (
    IdentityProviderSettings,
    TenantSettings,
    merge_patch,
    parse_settings,
    settings_from_json,
)

OIDC = {
    "type": "OIDC",
    "issuer": "https://login.acme.example",
    "client_id": "acme-client",
    "client_secret": "oidc-s3cret-value",
    "scopes": ["openid", "email"],
    "attribute_mapping": {"email": "email"},
}
GOOGLE = {"type": "Google", "client_id": "123.apps.googleusercontent.com", "client_secret": "g-s3cret", "scopes": ["openid", "email"]}
SAML_DOC = '<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>'


def _field(data: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_settings(data)
    return caught.value.field


def test_a_full_request_parses_and_its_secrets_are_split_off() -> None:
    parsed = parse_settings(
        {
            "callback_urls": ["https://app.acme.example/cb", "http://localhost:3000/cb"],
            "logout_urls": ["https://app.acme.example/bye"],
            "tags": {"cost-center": "cc 12", "team": ""},
            "identity_providers": {"acme-oidc": OIDC, "Google": GOOGLE, "acme-saml": {"type": "SAML", "metadata_document": SAML_DOC}},
        }
    )
    settings = parsed.settings
    assert settings.provider_names == ["Google", "acme-oidc", "acme-saml"]
    assert parsed.secrets == {"acme-oidc": "oidc-s3cret-value", "Google": "g-s3cret"}
    public = settings.public()
    assert "s3cret" not in repr(public) and "s3cret" not in repr(settings) and "s3cret" not in repr(parsed)
    assert settings_from_json(public) == settings  # the registry form round-trips
    oidc = settings.provider("acme-oidc")
    assert oidc is not None
    assert oidc.provider_details("from-secrets-manager") == {
        "client_id": "acme-client",
        "authorize_scopes": "openid email",
        "client_secret": "from-secrets-manager",
        "oidc_issuer": "https://login.acme.example",
        "attributes_request_method": "GET",
    }
    facebook = IdentityProviderSettings(name="Facebook", type="Facebook", client_id="f", scopes=("public_profile", "email"))
    assert facebook.provider_details("x")["authorize_scopes"] == "public_profile,email"
    saml = settings.provider("acme-saml")
    assert saml is not None and saml.provider_details(None) == {"MetadataFile": SAML_DOC} and not saml.has_secret


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"callback_urls": "https://a.example"}, "callback_urls"),
        ({"callback_urls": ["http://app.acme.example/cb"]}, "callback_urls[0]"),  # http only for localhost
        ({"callback_urls": ["https://a.example/cb#frag"]}, "callback_urls[0]"),
        ({"callback_urls": ["https://a.example/c b"]}, "callback_urls[0]"),
        ({"callback_urls": ["ftp://a.example/cb"]}, "callback_urls[0]"),
        ({"callback_urls": ["https://"]}, "callback_urls[0]"),
        ({"callback_urls": ["https://a.example/" + "x" * 1024]}, "callback_urls[0]"),
        ({"callback_urls": ["https://a.example/cb", "https://a.example/cb"]}, "callback_urls[1]"),
        ({"callback_urls": [f"https://a.example/{i}" for i in range(101)]}, "callback_urls"),
        ({"logout_urls": ["javascript:alert(1)"]}, "logout_urls[0]"),
        ({"tags": ["a"]}, "tags"),
        ({"tags": {"aws:x": "y"}}, "tags.aws:x"),
        ({"tags": {"AWS:x": "y"}}, "tags.AWS:x"),
        ({"tags": {"tenants:tenant-id": "other"}}, "tags.tenants:tenant-id"),
        ({"tags": {"k" * 129: "v"}}, "tags." + "k" * 129),
        ({"tags": {"ok": "v" * 257}}, "tags.ok"),
        ({"tags": {"bad<key>": "v"}}, "tags.bad<key>"),
        ({"tags": {"ok": "semi;colon"}}, "tags.ok"),
        ({"tags": {f"k{i}": "v" for i in range(49)}}, "tags"),
        ({"identity_providers": [OIDC]}, "identity_providers"),
        ({"identity_providers": {"x": "y"}}, "identity_providers.x"),
        ({"identity_providers": {"acme": {**OIDC, "type": "Apple"}}}, "identity_providers.acme.type"),
        ({"identity_providers": {"a": OIDC}}, "identity_providers.a"),  # name too short
        ({"identity_providers": {"acme_oidc!": OIDC}}, "identity_providers.acme_oidc!"),
        ({"identity_providers": {"COGNITO": OIDC}}, "identity_providers.COGNITO"),
        ({"identity_providers": {"Google": OIDC}}, "identity_providers.Google"),
        ({"identity_providers": {"gmail": GOOGLE}}, "identity_providers.gmail"),  # social: named as its type
        ({"identity_providers": {"acme": {**OIDC, "issuer": "http://login.acme.example"}}}, "identity_providers.acme.issuer"),
        ({"identity_providers": {"acme": {k: v for k, v in OIDC.items() if k != "issuer"}}}, "identity_providers.acme.issuer"),
        ({"identity_providers": {"acme": {k: v for k, v in OIDC.items() if k != "client_id"}}}, "identity_providers.acme.client_id"),
        ({"identity_providers": {"acme": {**OIDC, "client_id": "has space"}}}, "identity_providers.acme.client_id"),
        ({"identity_providers": {"acme": {k: v for k, v in OIDC.items() if k != "client_secret"}}}, "identity_providers.acme.client_secret"),
        ({"identity_providers": {"acme": {**OIDC, "client_secret": ""}}}, "identity_providers.acme.client_secret"),
        ({"identity_providers": {"acme": {**OIDC, "client_secret": "a\x00b"}}}, "identity_providers.acme.client_secret"),
        ({"identity_providers": {"acme": {**OIDC, "scopes": ["email"]}}}, "identity_providers.acme.scopes"),  # no openid
        ({"identity_providers": {"acme": {**OIDC, "scopes": []}}}, "identity_providers.acme.scopes"),
        ({"identity_providers": {"acme": {**OIDC, "scopes": ["openid", 'bad"quote']}}}, "identity_providers.acme.scopes[1]"),
        ({"identity_providers": {"acme": {**OIDC, "scopes": ["openid", "openid"]}}}, "identity_providers.acme.scopes"),
        ({"identity_providers": {"acme": {**OIDC, "attributes_request_method": "PUT"}}}, "identity_providers.acme.attributes_request_method"),
        ({"identity_providers": {"acme": {**OIDC, "metadata_url": "https://x"}}}, "identity_providers.acme.metadata_url"),
        ({"identity_providers": {"acme": {**OIDC, "attribute_mapping": {"bad name!": "x"}}}}, "identity_providers.acme.attribute_mapping.bad name!"),
        ({"identity_providers": {"acme": {**OIDC, "attribute_mapping": {"email": ""}}}}, "identity_providers.acme.attribute_mapping.email"),
        ({"identity_providers": {"acme": {**OIDC, "client_secret_arn": "arn:x"}}}, "identity_providers.acme.client_secret_arn"),
        ({"identity_providers": {"Google": {**GOOGLE, "issuer": "https://x"}}}, "identity_providers.Google.issuer"),
        ({"identity_providers": {"saml1": {"type": "SAML"}}}, "identity_providers.saml1"),
        ({"identity_providers": {"saml1": {"type": "SAML", "metadata_url": "https://m", "metadata_document": SAML_DOC}}}, "identity_providers.saml1"),
        ({"identity_providers": {"saml1": {"type": "SAML", "metadata_url": "http://idp.example/m"}}}, "identity_providers.saml1.metadata_url"),
        ({"identity_providers": {"saml1": {"type": "SAML", "metadata_document": "not xml"}}}, "identity_providers.saml1.metadata_document"),
        ({"identity_providers": {"saml1": {"type": "SAML", "metadata_document": SAML_DOC, "client_id": "x"}}}, "identity_providers.saml1.client_id"),
        ({"identity_providers": {"saml1": {"type": "SAML", "metadata_document": SAML_DOC, "idp_signout": "yes"}}}, "identity_providers.saml1.idp_signout"),
        ({"identity_providers": {f"idp-{i:02d}": {"type": "SAML", "metadata_document": SAML_DOC} for i in range(21)}}, "identity_providers"),
    ],
)
def test_bad_input_names_the_field(data: dict[str, Any], field: str) -> None:
    assert _field(data) == field


def test_secrets_never_appear_in_an_error_message() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_settings({"identity_providers": {"acme": {**OIDC, "client_secret": "leak-me\x01"}}})
    assert "leak-me" not in str(caught.value)


# -- RFC 7396 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        # The examples of RFC 7396 Appendix A.
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def _stored() -> TenantSettings:
    parsed = parse_settings({"tags": {"team": "a", "env": "prod"}, "identity_providers": {"acme-oidc": OIDC, "Google": GOOGLE}})
    # As the use case stores it: each secret replaced by where Secrets Manager keeps it.
    providers = tuple(
        IdentityProviderSettings(**{**{f: getattr(p, f) for f in IdentityProviderSettings.__dataclass_fields__}, "client_secret_arn": f"arn:secret:{p.name}"})
        for p in parsed.settings.identity_providers
    )
    return TenantSettings(parsed.settings.callback_urls, parsed.settings.logout_urls, parsed.settings.tags, providers)


def test_a_patch_keeps_a_providers_stored_secret_unless_a_new_one_is_sent() -> None:
    stored = _stored()
    merged = merge_patch(stored.public(), {"identity_providers": {"acme-oidc": {"client_id": "new-id"}, "Google": None}, "tags": {"env": None, "new": "1"}})
    parsed = parse_settings(merged, stored=stored)
    assert parsed.settings.provider_names == ["acme-oidc"]
    oidc = parsed.settings.provider("acme-oidc")
    assert oidc is not None and oidc.client_id == "new-id" and oidc.client_secret_arn == "arn:secret:acme-oidc"
    assert parsed.secrets == {}
    assert parsed.settings.tags == {"team": "a", "new": "1"}
    rotated = parse_settings(merge_patch(stored.public(), {"identity_providers": {"Google": {"client_secret": "rotated"}}}), stored=stored)
    assert rotated.secrets == {"Google": "rotated"}


def test_a_patch_cannot_change_a_providers_type_or_add_one_without_a_secret() -> None:
    stored = _stored()
    with pytest.raises(InvalidInput) as caught:
        parse_settings(merge_patch(stored.public(), {"identity_providers": {"acme-oidc": {"type": "SAML"}}}), stored=stored)
    assert caught.value.field == "identity_providers.acme-oidc.type"
    with pytest.raises(InvalidInput) as caught:
        parse_settings(merge_patch(stored.public(), {"identity_providers": {"Facebook": {"type": "Facebook", "client_id": "f", "scopes": ["email"]}}}), stored=stored)
    assert caught.value.field == "identity_providers.Facebook.client_secret"


def test_same_request_ignores_where_secrets_are_kept_but_not_the_rest() -> None:
    stored = _stored()
    sent = parse_settings({"tags": {"team": "a", "env": "prod"}, "identity_providers": {"acme-oidc": OIDC, "Google": GOOGLE}}).settings
    assert stored.same_request_as(sent)
    other = parse_settings({"tags": {"team": "b", "env": "prod"}, "identity_providers": {"acme-oidc": OIDC, "Google": GOOGLE}}).settings
    assert not stored.same_request_as(other)


def test_the_idempotency_fingerprint_holds_a_keyed_hash_of_a_client_secret_never_the_secret() -> None:
    import hashlib

    from service.idempotency import keyed_secrets

    key = b"k" * 32
    body = {"tenant_id": "acme", "identity_providers": {"acme-oidc": {**OIDC}, "Google": {**GOOGLE}}}
    hashed = keyed_secrets(body, key)
    text = repr(hashed)
    for secret in ("oidc-s3cret-value", "g-s3cret"):
        assert secret not in text and hashlib.sha256(secret.encode()).hexdigest() not in text
    assert hashed["identity_providers"]["acme-oidc"]["client_id"] == "acme-client"
    assert hashed == keyed_secrets(body, key)  # deterministic: the same request matches
    other = {**body, "identity_providers": {**body["identity_providers"], "Google": {**GOOGLE, "client_secret": "other"}}}
    assert keyed_secrets(other, key) != hashed  # another secret is another request
    assert keyed_secrets(body, b"n" * 32) != hashed  # without the key, a guess cannot be checked
    assert keyed_secrets({"tenant_id": "acme"}, key) == {"tenant_id": "acme"}