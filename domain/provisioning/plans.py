"""Every operation's plan, derived from the table of resources.py.

- provisioning: the entries a tenant's scope needs, each after its dependencies in the plan;
  a step adopts what exists, else creates (``ensure``);
- teardown: every entry with a ``delete``, whatever the tenant's tier (a resource of an older
  template is found by name), each after the deletes of what depends on it: the reverse order;
  a delete clears the outputs of its entry and of every entry ``part_of`` it;
- settings update: each entry's ``update`` after the updates of what it depends on, the tags of
  every tagged resource once those are done, and each ``prune`` after the updates of what
  depends on its entry (a provider goes once no client lists it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import cast

import domain.provisioning.cloud as cloud
from domain.errors import CloudAlreadyExists
from domain.plan import Step, validate_plan
from domain.provisioning.context import Scope, TenantRun
from domain.provisioning.outputs import TenantOutputs
from domain.provisioning.resources import BY_NAME, RESOURCES, Resource, TagTarget
from domain.tiers import TierTemplate

StepHandler = Callable[[TenantRun], Awaitable[TenantOutputs]]
UPDATE_TAGS = "update_tags"


def _upstream(entry: Resource) -> set[str]:
    """Every entry this one depends on in some plan (the widest scope), transitively."""
    seen: set[str] = set()
    todo = list(_all_deps(entry))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_all_deps(BY_NAME[name]))
    return seen


def _all_deps(entry: Resource) -> tuple[str, ...]:
    return entry.after


# -- provisioning --------------------------------------------------------------------------------


def scope_steps(scope: Scope) -> list[Step]:
    entries = [entry for entry in RESOURCES if entry.needed(scope)]
    present = {entry.name for entry in entries}
    return [Step(e.name, tuple(d for d in e.deps(scope) if d in present)) for e in entries]


def provisioning_steps(template: TierTemplate, *, with_admin: bool, has_identity_providers: bool = False) -> list[Step]:
    return scope_steps(Scope(template, with_admin=with_admin, has_identity_providers=has_identity_providers))


def ensure(entry: Resource) -> StepHandler:
    """Adopt-or-create: look first (unless a fresh tenant's first try may skip it, runner.py),
    create when nothing is there, and adopt what a create finds already existing (a unique name
    taken by an earlier attempt whose response was lost; adopt checks it is ours)."""

    async def run_step(run: TenantRun) -> TenantOutputs:
        if entry.adopt is not None and (entry.always_adopt or not run.may_skip_lookup()):
            found = await entry.adopt(run)
            if found is not None:
                return found
        try:
            return await entry.create(run)
        except CloudAlreadyExists:
            found = await entry.adopt(run) if entry.adopt is not None else None
            if found is None:
                raise
            return found

    return run_step


# -- teardown ------------------------------------------------------------------------------------


def _nearest_deletable(names: Iterable[str]) -> set[str]:
    """The nearest entries with a ``delete`` among ``names`` and, through those without one,
    their dependencies."""
    found: set[str] = set()
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if BY_NAME[name].delete is not None:
            found.add(name)
        else:
            todo.extend(_all_deps(BY_NAME[name]))
    return found


def teardown_steps() -> list[Step]:
    deletable = [entry for entry in RESOURCES if entry.delete is not None]
    # delete_X comes after delete_Y for every deletable Y whose nearest deletable dependency is X.
    waits: dict[str, list[str]] = {entry.name: [] for entry in deletable}
    for entry in deletable:
        for dep in sorted(_nearest_deletable(_all_deps(entry))):
            waits[dep].append(entry.teardown_step)
    steps = [Step(entry.teardown_step, tuple(waits[entry.name])) for entry in reversed(deletable)]
    validate_plan(steps)
    return steps


def cleared_by(entry: Resource) -> TenantOutputs:
    """The outputs a delete of ``entry`` clears: its own and those of everything part of it."""
    keys = list(entry.outputs)
    for other in RESOURCES:
        owner = other.part_of
        while owner is not None and owner != entry.name:
            owner = BY_NAME[owner].part_of
        if owner == entry.name:
            keys += other.outputs
    return cast(TenantOutputs, dict.fromkeys(keys))


def teardown_handler(entry: Resource) -> StepHandler:
    assert entry.delete is not None
    delete, cleared = entry.delete, cleared_by(entry)

    async def run_step(run: TenantRun) -> TenantOutputs:
        return {**cleared, **await delete(run)}

    return run_step


# -- settings update -----------------------------------------------------------------------------


def update_steps() -> list[Step]:
    updatable = {entry.name: entry for entry in RESOURCES if entry.update is not None}
    steps: list[Step] = []
    for entry in updatable.values():
        deps = sorted(_upstream(entry) & set(updatable))
        steps.append(Step(entry.update_step or f"update_{entry.name}", tuple(updatable[d].update_step or "" for d in deps)))
    update_names = tuple(step.name for step in steps)
    for entry in RESOURCES:
        if entry.prune is not None:
            dependents = [e for e in updatable.values() if entry.name in _upstream(e)]
            steps.append(Step(entry.prune_step or f"prune_{entry.name}", tuple(e.update_step or "" for e in dependents)))
    # Tags last, on every resource in its final shape.
    steps.append(Step(UPDATE_TAGS, update_names))
    validate_plan(steps)
    return steps


def tag_targets(run: TenantRun) -> list[TagTarget]:
    """The tagged AWS resources of the tenant: those the entries of its plan make (the plan its
    template and settings make now, and every step its provisioning recorded), found as those
    entries name them."""
    plan = [step.name for step in scope_steps(Scope(run.tpl, has_identity_providers=run.scope().has_identity_providers))]
    names = dict.fromkeys([*plan, *run.tenant.completed_steps])
    targets: dict[TagTarget, None] = {}
    for name in names:
        entry = BY_NAME.get(name)
        if entry is not None and entry.tagged is not None:
            targets.update(dict.fromkeys(entry.tagged(run)))
    return list(targets)


async def update_tags(run: TenantRun) -> TenantOutputs:
    """Every resource of the tenant carries exactly the template's, the tenant's and the
    ownership tags; a tag the tenant removed is removed everywhere."""
    await asyncio.gather(
        *(cloud.AWS_KINDS[kind].retag(run.gw, run.cell, key, run.tags, run.owned) for kind, key in tag_targets(run))
    )
    return {}


def handlers() -> dict[str, StepHandler]:
    """Every step of every plan, by name."""
    table: dict[str, StepHandler] = {}
    for entry in RESOURCES:
        table[entry.name] = ensure(entry)
        if entry.delete is not None:
            table[entry.teardown_step] = teardown_handler(entry)
        if entry.update is not None:
            table[entry.update_step or f"update_{entry.name}"] = entry.update
        if entry.prune is not None:
            table[entry.prune_step or f"prune_{entry.name}"] = entry.prune
    table[UPDATE_TAGS] = update_tags
    return table


TEARDOWN_STEPS = teardown_steps()
UPDATE_STEPS = update_steps()
HANDLERS = handlers()
