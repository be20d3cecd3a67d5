"""Test-only crash points: the process kills itself (SIGKILL, a real kill) at a named point.

Set ``TENANTS_TEST_CRASH_AT`` to one of:

* ``after-call:<Operation>``: right after AWS answered ``<Operation>`` with success and before
  anything is written to the registry (e.g. ``after-call:CreateUserPool``);
* ``step:<step>``: right after a plan step's outputs were committed to the registry (a step
  boundary, e.g. ``step:identity_pool`` or ``step:delete_user_pool``);
* ``event:<type>``: right after the commit that wrote a lifecycle event of that type to the
  outbox, before the dispatcher could deliver it (e.g. ``event:tenant.provisioning.started``).

The crash harness in tests/reliability uses it to prove that a restarted service resumes with
no duplicate and no orphan. Never set it in production.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from domain.lifecycle import LifecycleEvent
from domain.ports import StepObserver


def _die(point: str) -> None:
    sys.stderr.write(f'{{"event": "crash_point_reached", "point": "{point}"}}\n')
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def parse(point: str) -> tuple[str, str]:
    kind, _, name = point.partition(":")
    if kind not in ("after-call", "step", "event") or not name:
        raise ValueError("must be 'after-call:<Operation>', 'step:<step name>' or 'event:<event type>'")
    return kind, name


def aws_hooks(point: str | None) -> list[tuple[str, Any]]:
    if not point or parse(point)[0] != "after-call":
        return []
    operation = parse(point)[1]

    def after_call(http_response: Any = None, model: Any = None, **_: Any) -> None:
        if model is not None and model.name == operation and http_response is not None and http_response.status_code < 300:
            _die(point)

    return [("after-call", after_call)]


class CrashingObserver:
    """Wraps the real observer; dies once the named step has been recorded."""

    def __init__(self, inner: StepObserver, point: str | None) -> None:
        self._inner = inner
        self._step = parse(point)[1] if point and parse(point)[0] == "step" else None

    def step_finished(self, **event: Any) -> None:
        self._inner.step_finished(**event)
        if self._step is not None and event.get("step") == self._step and event.get("outcome") == "ok":
            _die(f"step:{self._step}")


def outbox_hook(point: str | None) -> Callable[[list[LifecycleEvent]], None]:
    """Called with the lifecycle events of each commit that wrote some; dies at ``event:<type>``."""
    event_type = parse(point)[1] if point and parse(point)[0] == "event" else None

    def committed(events: list[LifecycleEvent]) -> None:
        if event_type is not None and any(e.type == event_type for e in events):
            _die(f"event:{event_type}")

    return committed
