"""The emulator's own costs that AWS does not have, taken out where they would skew benchmarks.

moto's CreateUserPool imports the same bundled RSA signing key (``jwks-private.json``) into every
new pool, and joserfc's import recovers the key's primes and checks it: 0.1 to 0.4 s of CPU per
pool, under the server's one GIL. That caps the emulator far below Cognito's 15 CreateUserPool/s
and adds a fixed cost to every onboarding. ``install()`` imports it once: pools share one key
object, as they already shared the key material.
"""

from __future__ import annotations

import json
import threading
import types
from typing import Any

_LOCK = threading.Lock()


def install() -> None:
    from moto.cognitoidp import models

    original = models.jwk
    if getattr(original, "_imported_once", False):
        return
    cache: dict[str, Any] = {}

    class RSAKey:
        @staticmethod
        def import_key(value: Any, *args: Any, **kwargs: Any) -> Any:
            if args or kwargs or not isinstance(value, dict):
                return original.RSAKey.import_key(value, *args, **kwargs)
            fingerprint = json.dumps(value, sort_keys=True)
            key = cache.get(fingerprint)
            if key is None:
                key = cache[fingerprint] = original.RSAKey.import_key(value)
            return key

    with _LOCK:
        if getattr(models.jwk, "_imported_once", False):
            return
        shim = types.SimpleNamespace(**{name: getattr(original, name) for name in dir(original) if not name.startswith("__")})
        shim.RSAKey = RSAKey
        shim._imported_once = True
        models.jwk = shim
