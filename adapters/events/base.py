"""What every event publisher is: ``publish(envelope)``, raising DeliveryFailed when it did not land."""

from __future__ import annotations

from typing import Any, Protocol


class DeliveryFailed(Exception):
    """A delivery that did not land. ``permanent``: sending it again cannot help (the row goes
    ``dead`` at once). The message names no URL, header or secret: it is logged and stored."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Publisher(Protocol):
    kind: str  # "eventbridge" | "webhook": the metrics label

    async def publish(self, envelope: dict[str, Any]) -> None: ...
