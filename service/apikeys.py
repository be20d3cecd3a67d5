"""API keys: random, high-entropy bearer secrets of which only a SHA-256 hash is stored.

A plain SHA-256 (rather than a slow password hash) is what Stripe-style keys use: the key has
256 bits of entropy, so there is nothing to brute-force, and verification stays cheap on every
request.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

KEY_PREFIX = "tpk_"
ALL_SCOPES = ("tenants:read", "tenants:write", "tenants:delete", "keys:admin")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def public_prefix(key: str) -> str:
    """A short, non-secret part of the key for listings and logs."""
    return key[: len(KEY_PREFIX) + 6]


def local_bootstrap_key(var_dir: Path) -> str:
    """The generated development key under ``var/``, created on first use (mode 0600)."""
    path = var_dir / "bootstrap-api-key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key
