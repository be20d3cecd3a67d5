"""A plan is a DAG of named steps; independent steps run concurrently.

A step starts as soon as every step it comes ``after`` has finished, so the plan's duration
approaches the depth of its critical path times the latency of one AWS call. When a step fails,
no new step starts, the steps already running are allowed to finish (their outputs are then
recorded, so nothing they created is forgotten), and the first error is raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    after: tuple[str, ...] = ()


class PlanError(Exception):
    """Raised by ``run_plan`` with the name of the step that failed first."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"step {step} failed: {error!r}")
        self.step = step
        self.error = error


def validate_plan(steps: Iterable[Step]) -> list[Step]:
    """Check names are unique, dependencies exist and there is no cycle; return topological order."""
    by_name: dict[str, Step] = {}
    for step in steps:
        if step.name in by_name:
            raise ValueError(f"duplicate step {step.name}")
        by_name[step.name] = step
    for step in by_name.values():
        for dep in step.after:
            if dep not in by_name:
                raise ValueError(f"step {step.name} comes after unknown step {dep}")
    order: list[Step] = []
    state: dict[str, int] = {}

    def visit(step: Step) -> None:
        if state.get(step.name) == 2:
            return
        if state.get(step.name) == 1:
            raise ValueError(f"cycle through step {step.name}")
        state[step.name] = 1
        for dep in step.after:
            visit(by_name[dep])
        state[step.name] = 2
        order.append(step)

    for step in by_name.values():
        visit(step)
    return order


def critical_path_depth(steps: Iterable[Step]) -> int:
    depth: dict[str, int] = {}
    for step in validate_plan(steps):
        depth[step.name] = 1 + max((depth[d] for d in step.after), default=0)
    return max(depth.values(), default=0)


async def run_plan(
    steps: Iterable[Step],
    run_step: Callable[[Step], Awaitable[None]],
    *,
    done: Iterable[str] = (),
) -> None:
    """Run every step not in ``done``, each once its dependencies are done."""
    ordered = validate_plan(steps)
    finished = set(done)
    pending = [step for step in ordered if step.name not in finished]
    running: dict[asyncio.Task[None], Step] = {}
    failure: PlanError | None = None
    try:
        while pending or running:
            if failure is None:
                ready = [step for step in pending if all(dep in finished for dep in step.after)]
                for step in ready:
                    pending.remove(step)
                    running[asyncio.ensure_future(run_step(step))] = step
            if not running:
                break
            completed, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            # In start order, so that when two steps fail in one tick the first started is reported.
            for task in [t for t in running if t in completed]:
                step = running.pop(task)
                error = task.exception()
                if error is None:
                    finished.add(step.name)
                elif failure is None:
                    failure = PlanError(step.name, error)
    finally:
        # Only reached with tasks still running when we are cancelled ourselves.
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    if failure is not None:
        raise failure
