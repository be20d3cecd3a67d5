"""Amazon EventBridge: PutEvents on the configured bus, one entry per event (as sbt-aws does).

``Source`` is the service's name, ``DetailType`` the event type, ``Detail`` the event's envelope
as JSON. A call that fails, or an entry EventBridge did not accept (``FailedEntryCount`` > 0 and
the entry's ``ErrorCode``), is a failed delivery: tried again unless the error says the entry
itself is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.aws.clients import AwsClients
from adapters.aws.errors import aws_call
from adapters.events.base import DeliveryFailed
from domain.errors import CloudError

DEFAULT_SOURCE = "tenant-identity-provisioner"
# Entry errors that sending the same entry again cannot fix.
PERMANENT_ENTRY_ERRORS = frozenset({"MalformedDetail", "InvalidArgument", "ValidationException"})
PERMANENT_CALL_ERRORS = frozenset({"ValidationException", "InvalidParameterValue"})


def eventbridge_destination(bus_name: str) -> str:
    return f"eventbridge:{bus_name}"


class EventBridgePublisher:
    kind = "eventbridge"

    def __init__(self, aws: AwsClients, bus_name: str, *, source: str = DEFAULT_SOURCE) -> None:
        self._aws = aws
        self.bus_name = bus_name
        self.source = source
        self.destination = eventbridge_destination(bus_name)

    async def publish(self, envelope: dict[str, Any]) -> None:
        entry = {
            "Source": self.source,
            "DetailType": str(envelope["type"]),
            "Detail": json.dumps(envelope, separators=(",", ":"), sort_keys=True),
            "EventBusName": self.bus_name,
        }
        try:
            response = await aws_call(self._aws.client("events"), "PutEvents", Entries=[entry])
        except CloudError as exc:
            raise DeliveryFailed(f"PutEvents: {exc.code}", permanent=exc.code in PERMANENT_CALL_ERRORS) from None
        if response.get("FailedEntryCount", 0):
            failed = next((e for e in response.get("Entries", []) if e.get("ErrorCode")), {})
            code = str(failed.get("ErrorCode") or "FailedEntry")
            raise DeliveryFailed(f"PutEvents entry: {code}", permanent=code in PERMANENT_ENTRY_ERRORS)
