"""Loading the tier templates file (TOML) at start-up."""

from __future__ import annotations

import tomllib
from pathlib import Path

from domain.errors import TemplateError
from domain.tiers import TierTemplate, parse_tiers


def load_tiers(path: Path) -> dict[str, TierTemplate]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise TemplateError(f"tier templates file {path} does not exist (TENANTS_TIERS_FILE)") from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"tier templates file {path} is not valid TOML: {exc}") from None
    return parse_tiers(data)
