"""EMULATOR EXTENSION for IAM, on top of moto 5.2.5.

IAM role names are unique per account case-insensitively: AWS refuses CreateRole "MyRole" with
EntityAlreadyExists while "myrole" exists. moto compares names exactly and creates the second
role. ``install()`` makes moto's CreateRole compare them as AWS does (idempotent).
"""

from __future__ import annotations

import functools
from typing import Any


def install() -> None:
    from moto.iam.exceptions import EntityAlreadyExists
    from moto.iam.models import IAMBackend

    original = IAMBackend.create_role
    if getattr(original, "_case_insensitive", False):
        return

    @functools.wraps(original)
    def create_role(self: IAMBackend, role_name: str, *args: Any, **kwargs: Any) -> Any:
        if any(role.name.lower() == role_name.lower() for role in self.get_roles()):
            raise EntityAlreadyExists(f"Role with name {role_name} already exists.")
        return original(self, role_name, *args, **kwargs)

    create_role._case_insensitive = True  # type: ignore[attr-defined]
    IAMBackend.create_role = create_role  # type: ignore[method-assign]
