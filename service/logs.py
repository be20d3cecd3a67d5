"""structlog set-up: JSON lines in production, a readable console for `make run`.

A processor drops the values of keys that can hold secrets, so that an API key or a token that
slips into an event never reaches a log line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

_SECRET_WORDS = ("authorization", "api_key", "apikey", "password", "secret", "token", "credential", "dsn")


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = "[redacted]"
    return event


def configure_logging(fmt: str = "json", level: str = "INFO", stream: TextIO | None = None) -> None:
    """``stream`` defaults to whatever ``sys.stderr`` is when a line is written."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # Looked up per logger, so a process (or a test) that swaps sys.stderr is followed.
        logger_factory=lambda *_: structlog.PrintLogger(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library; route them through the same renderer.
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True


class LogStepObserver:
    """StepObserver that writes one line per finished step, with its duration."""

    def __init__(self) -> None:
        self._log = structlog.get_logger("tenants.steps")

    def step_finished(
        self, *, tenant_id: str, operation: str, step: str, duration_s: float, outcome: str, error_code: str | None
    ) -> None:
        self._log.info(
            "step_finished",
            tenant_id=tenant_id,
            operation=operation,
            step=step,
            duration_ms=round(duration_s * 1000, 1),
            outcome=outcome,
            error_code=error_code,
        )
