"""A plan is a DAG of named steps; independent steps run concurrently.

A step starts as soon as every step it comes ``after`` has finished, so the plan's duration
approaches the depth of its critical path times the latency of one AWS call. When a step fails,
no new step starts, the steps already running are allowed to finish (their outputs are then
recorded, so nothing they created is forgotten), and the first error is raised.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter


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
    try:
        order = TopologicalSorter({step.name: step.after for step in by_name.values()}).static_order()
        return [by_name[name] for name in order]
    except CycleError as cycle:
        raise ValueError(f"cycle through step {cycle.args[1][0]}") from None


def critical_path_depth(steps: Iterable[Step]) -> int:
    depth: dict[str, int] = {}
    for step in validate_plan(steps):
        depth[step.name] = 1 + max((depth[d] for d in step.after), default=0)
    return max(depth.values(), default=0)


# Set in each step's task by run_plan: marks that step's outputs as available to its dependents.
_RELEASE: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("plan_release", default=None)


def release_dependents() -> None:
    """Called from inside a running step: the steps that come after it may start now, before it
    returns (say, while it writes down what it made). It still counts as running until it
    returns, for ``max_concurrent`` too, and should it fail after all, the plan fails with it (no
    further step starts; those already started finish). Outside a plan it does nothing."""
    release = _RELEASE.get()
    if release is not None:
        release()


async def run_plan(
    steps: Iterable[Step],
    run_step: Callable[[Step], Awaitable[None]],
    *,
    done: Iterable[str] = (),
    max_concurrent: int = 0,
) -> None:
    """Run every step not in ``done``, each once its dependencies are done (or have called
    ``release_dependents``); at most ``max_concurrent`` at once (0: no limit; 1 runs the plan one
    step at a time, in order)."""
    ordered = validate_plan(steps)
    finished = set(done)
    released: set[str] = set()
    pending = [step for step in ordered if step.name not in finished]
    running: dict[asyncio.Task[None], Step] = {}
    failure: PlanError | None = None
    wake = asyncio.Event()

    def start(step: Step) -> asyncio.Task[None]:
        def release() -> None:
            released.add(step.name)
            wake.set()

        context = contextvars.copy_context()
        context.run(_RELEASE.set, release)
        return asyncio.get_running_loop().create_task(run_step(step), context=context)  # type: ignore[arg-type]

    waiter: asyncio.Task[bool] | None = None
    try:
        while pending or running:
            if failure is None:
                available = finished | released
                ready = [step for step in pending if all(dep in available for dep in step.after)]
                if max_concurrent > 0:
                    ready = ready[: max(0, max_concurrent - len(running))]
                for step in ready:
                    pending.remove(step)
                    running[start(step)] = step
            if not running:
                break
            wake.clear()
            waiter = asyncio.ensure_future(wake.wait())
            completed, _ = await asyncio.wait([*running, waiter], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            # In start order, so that when two steps fail in one tick the first started is reported.
            for task in [t for t in running if t in completed]:
                step = running.pop(task)
                error = task.exception()
                if error is None:
                    finished.add(step.name)
                elif failure is None:
                    failure = PlanError(step.name, error)
    finally:
        if waiter is not None:
            waiter.cancel()
        # Only reached with tasks still running when we are cancelled ourselves.
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    if failure is not None:
        raise failure
