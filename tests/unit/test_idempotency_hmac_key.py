"""TENANTS_IDEMPOTENCY_HMAC_KEY: the key of the Idempotency-Key fingerprint's hash of secrets."""

from __future__ import annotations

import pytest

from service.settings import SettingsError, load_settings


def test_the_key_is_optional() -> None:
    assert load_settings().idempotency_hmac_key is None
    assert load_settings(idempotency_hmac_key="").idempotency_hmac_key is None


def test_a_key_of_32_characters_or_more_is_kept_secret() -> None:
    settings = load_settings(idempotency_hmac_key="s" * 32)
    assert settings.idempotency_hmac_key is not None
    assert settings.idempotency_hmac_key.get_secret_value() == "s" * 32
    assert "s" * 32 not in repr(settings)


def test_a_short_key_is_refused_naming_the_variable_and_not_the_key() -> None:
    with pytest.raises(SettingsError, match="TENANTS_IDEMPOTENCY_HMAC_KEY") as caught:
        load_settings(idempotency_hmac_key="short-but-secret-31-characters!")
    assert "short-but-secret" not in str(caught.value)
    assert "32" in str(caught.value)
