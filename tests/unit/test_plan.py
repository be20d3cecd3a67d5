"""The plan runner: a DAG of steps, independent steps concurrently, failures stop new work."""

from __future__ import annotations

import asyncio

import pytest

from domain.plan import PlanError, Step, critical_path_depth, run_plan, validate_plan
from domain.provisioning import TEARDOWN_STEPS, provisioning_steps
from tests.unit.fakes import shipped_tiers

# Guards against a hang when the runner serialises what should overlap; not a timing assertion.
GUARD_S = 2.0


class Boom(Exception):
    pass


# -- validate_plan ------------------------------------------------------------------------------


def test_validate_plan_rejects_duplicate_step_names() -> None:
    with pytest.raises(ValueError, match="duplicate step a"):
        validate_plan([Step("a"), Step("a")])


def test_validate_plan_rejects_unknown_dependency() -> None:
    with pytest.raises(ValueError, match="step b comes after unknown step nope"):
        validate_plan([Step("a"), Step("b", ("nope",))])


@pytest.mark.parametrize(
    "steps",
    [
        [Step("a", ("a",))],
        [Step("a", ("b",)), Step("b", ("a",))],
        [Step("root"), Step("a", ("root", "c")), Step("b", ("a",)), Step("c", ("b",))],
    ],
    ids=["self", "two", "three-behind-a-root"],
)
def test_validate_plan_rejects_cycles(steps: list[Step]) -> None:
    with pytest.raises(ValueError, match="cycle"):
        validate_plan(steps)


def test_validate_plan_returns_a_topological_order() -> None:
    steps = [Step("d", ("b", "c")), Step("c", ("a",)), Step("b", ("a",)), Step("a")]
    order = [s.name for s in validate_plan(steps)]
    assert sorted(order) == ["a", "b", "c", "d"]
    for step in steps:
        for dep in step.after:
            assert order.index(dep) < order.index(step.name)


def test_every_provisioning_plan_and_the_teardown_are_valid() -> None:
    for template in shipped_tiers().values():
        for with_admin in (False, True):
            validate_plan(provisioning_steps(template, with_admin=with_admin))
    validate_plan(TEARDOWN_STEPS)


# -- critical path --------------------------------------------------------------------------------


def test_premium_plan_critical_path_is_six_calls_deep() -> None:
    premium = shipped_tiers()["premium"]
    steps = provisioning_steps(premium, with_admin=True)
    assert critical_path_depth(steps) == 6
    # ...while a sequential implementation would make one call per step.
    assert len(steps) >= 12
    # The chain of ARCHITECTURE.md really is the critical path: drop any link and it gets shorter.
    chain = ["user_pool", "app_client", "identity_pool", "auth_role", "auth_role_policy", "identity_pool_roles"]
    by_name = {s.name: s for s in steps}
    for earlier, later in zip(chain, chain[1:]):
        assert earlier in by_name[later].after


def test_critical_path_of_a_chain_and_of_nothing() -> None:
    assert critical_path_depth([Step("a"), Step("b", ("a",)), Step("c", ("b",)), Step("x")]) == 3
    assert critical_path_depth([]) == 0


# -- run_plan ---------------------------------------------------------------------------------


async def test_independent_steps_run_concurrently() -> None:
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def run_step(step: Step) -> None:
        started[step.name].set()
        other = "b" if step.name == "a" else "a"
        # Each waits for the other to have started: only possible if both run at once.
        await started[other].wait()

    await asyncio.wait_for(run_plan([Step("a"), Step("b")], run_step), GUARD_S)


async def test_a_step_starts_as_soon_as_its_own_dependencies_are_done() -> None:
    # slow (no deps) keeps running until fast_child has started; fast_child only needs fast.
    child_started = asyncio.Event()
    ran: list[str] = []

    async def run_step(step: Step) -> None:
        ran.append(step.name)
        if step.name == "slow":
            await child_started.wait()
        if step.name == "fast_child":
            child_started.set()

    steps = [Step("slow"), Step("fast"), Step("fast_child", ("fast",)), Step("last", ("slow", "fast_child"))]
    await asyncio.wait_for(run_plan(steps, run_step), GUARD_S)
    assert ran[-1] == "last"
    assert sorted(ran) == ["fast", "fast_child", "last", "slow"]


async def test_steps_start_only_after_all_their_dependencies_finished() -> None:
    finished: set[str] = set()
    violations: list[str] = []
    steps = [
        Step("user_pool"),
        Step("a", ("user_pool",)),
        Step("b", ("user_pool",)),
        Step("c", ("a", "b")),
        Step("d", ("c",)),
        Step("e", ("a",)),
    ]
    deps = {s.name: set(s.after) for s in steps}

    async def run_step(step: Step) -> None:
        if not deps[step.name] <= finished:
            violations.append(step.name)
        await asyncio.sleep(0)
        finished.add(step.name)

    await run_plan(steps, run_step)
    assert violations == []
    assert finished == set(deps)


async def test_each_step_runs_exactly_once() -> None:
    calls: list[str] = []

    async def run_step(step: Step) -> None:
        calls.append(step.name)

    premium = shipped_tiers()["premium"]
    steps = provisioning_steps(premium, with_admin=True)
    await run_plan(steps, run_step)
    assert sorted(calls) == sorted(s.name for s in steps)


async def test_done_steps_are_skipped_and_count_as_finished() -> None:
    calls: list[str] = []

    async def run_step(step: Step) -> None:
        calls.append(step.name)

    steps = [Step("a"), Step("b", ("a",)), Step("c", ("b",))]
    await run_plan(steps, run_step, done=["a", "b"])
    assert calls == ["c"]


async def test_all_done_runs_nothing() -> None:
    async def run_step(step: Step) -> None:
        raise AssertionError(f"{step.name} should not run")

    await run_plan([Step("a"), Step("b", ("a",))], run_step, done=("a", "b"))


async def test_failure_starts_no_new_step_but_lets_running_ones_finish() -> None:
    a_failing = asyncio.Event()
    started: list[str] = []
    finished: list[str] = []

    async def run_step(step: Step) -> None:
        started.append(step.name)
        if step.name == "a":
            a_failing.set()
            raise Boom("quota")
        if step.name == "b":
            await a_failing.wait()
            for _ in range(5):  # let the runner observe a's failure while b is still running
                await asyncio.sleep(0)
        finished.append(step.name)

    steps = [Step("a"), Step("b"), Step("after_b", ("b",)), Step("after_a", ("a",))]
    with pytest.raises(PlanError) as caught:
        await asyncio.wait_for(run_plan(steps, run_step), GUARD_S)

    assert caught.value.step == "a"
    assert isinstance(caught.value.error, Boom)
    assert "a" in str(caught.value)
    assert finished == ["b"], "the running step was cancelled instead of allowed to finish"
    assert "after_b" not in started, "a new step started after a failure"
    assert "after_a" not in started


async def test_the_first_failure_is_the_one_reported() -> None:
    first_failed = asyncio.Event()

    async def run_step(step: Step) -> None:
        if step.name == "first":
            first_failed.set()
            raise Boom("first")
        await first_failed.wait()
        for _ in range(5):  # fail clearly later than "first", after the runner has seen it
            await asyncio.sleep(0)
        raise Boom("second")

    with pytest.raises(PlanError) as caught:
        await run_plan([Step("first"), Step("second")], run_step)
    assert caught.value.step == "first"
    assert str(caught.value.error) == "first"


async def test_cancelling_the_plan_cancels_the_running_steps() -> None:
    entered = asyncio.Event()
    cancelled: list[str] = []

    async def run_step(step: Step) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(step.name)
            raise

    task = asyncio.ensure_future(run_plan([Step("a")], run_step))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == ["a"]
