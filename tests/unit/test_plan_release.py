"""run_plan's early release (release_dependents) and its max_concurrent limit."""

from __future__ import annotations

import asyncio

import pytest

from domain.plan import PlanError, Step, release_dependents, run_plan

GUARD_S = 5.0


async def test_dependents_start_once_released_while_the_step_still_runs() -> None:
    order: list[str] = []
    b_started = asyncio.Event()

    async def run_step(step: Step) -> None:
        order.append(f"start {step.name}")
        if step.name == "a":
            release_dependents()
            await b_started.wait()  # would deadlock if b waited for a to return
            order.append("a returns")
        else:
            b_started.set()

    await asyncio.wait_for(run_plan([Step("a"), Step("b", ("a",))], run_step), GUARD_S)
    assert order == ["start a", "start b", "a returns"]


async def test_a_failure_after_release_fails_the_plan_and_starts_nothing_more() -> None:
    started: list[str] = []

    async def run_step(step: Step) -> None:
        started.append(step.name)
        if step.name == "a":
            release_dependents()
            await asyncio.sleep(0.01)
            raise RuntimeError("the record failed")
        if step.name == "b":
            await asyncio.sleep(0.05)  # still running when a fails: allowed to finish

    steps = [Step("a"), Step("b", ("a",)), Step("c", ("b",))]
    with pytest.raises(PlanError) as failure:
        await asyncio.wait_for(run_plan(steps, run_step), GUARD_S)
    assert failure.value.step == "a"
    assert started == ["a", "b"]


async def test_max_concurrent_one_runs_in_order_and_counts_released_steps() -> None:
    running = 0
    most = 0
    order: list[str] = []

    async def run_step(step: Step) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        order.append(step.name)
        release_dependents()
        await asyncio.sleep(0)
        running -= 1

    steps = [Step("a"), Step("b", ("a",)), Step("c", ("a",)), Step("d", ("b", "c"))]
    await asyncio.wait_for(run_plan(steps, run_step, max_concurrent=1), GUARD_S)
    assert most == 1 and order == ["a", "b", "c", "d"]


def test_release_outside_a_plan_does_nothing() -> None:
    release_dependents()
