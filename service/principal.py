"""Who is calling: the one shape every credential (API key, JWT) is turned into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Principal:
    # Stable id used for audit, rate limits and Idempotency-Key scoping: "key_..." for an API
    # key (its record id), "jwt:<issuer>#<sub>" for a token subject.
    id: str
    kind: Literal["api_key", "jwt"]
    scopes: frozenset[str]
    name: str = ""
