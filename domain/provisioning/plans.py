"""Every operation's plan, derived from a table of resource kinds (resources.py's by default).

- provisioning: the entries a tenant's scope needs, each after its dependencies in the plan;
  a step adopts what exists, else creates (``ensure``);
- teardown: every entry with a ``delete``, whatever the tenant's tier (a resource of an older
  template is found by name), each after the deletes of what depends on it: the reverse order;
  a delete clears the outputs of its entry and of every entry ``part_of`` it;
- settings update: each entry's ``update`` after the updates of what it depends on, each
  ``prune`` after the updates of what depends on its entry (a provider goes once no client
  lists it), and the tags of every tagged resource last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import cast

import domain.provisioning.cloud as cloud
from domain.errors import CloudAlreadyExists
from domain.plan import Step, validate_plan
from domain.provisioning.context import Scope, TenantRun
from domain.provisioning.outputs import OUTPUT_KEYS, TenantOutputs
from domain.provisioning.resources import RESOURCES, Resource, TagTarget
from domain.tiers import TierTemplate

StepHandler = Callable[[TenantRun], Awaitable[TenantOutputs]]
UPDATE_TAGS = "update_tags"


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


class Plans:
    """The plans and step handlers of one table of resource kinds."""

    def __init__(self, table: Sequence[Resource]) -> None:
        self.table = tuple(table)
        self.by_name = {entry.name: entry for entry in self.table}
        self._check()
        self.teardown = self._teardown_steps()
        self.update = self._update_steps()
        self.handlers = self._handlers()

    def _check(self) -> None:
        """Names unique, each entry after earlier ones only, outputs declared, and every
        resource deleted by its own entry or with the one it is part of."""
        seen: set[str] = set()
        for entry in self.table:
            if entry.name in seen:
                raise ValueError(f"resource {entry.name} is in the table twice")
            unknown = [d for d in (*entry.after, *filter(None, [entry.part_of])) if d not in seen]
            if unknown:
                raise ValueError(f"resource {entry.name} comes after {unknown}, not listed before it")
            undeclared = set(entry.outputs) - OUTPUT_KEYS
            if undeclared:
                raise ValueError(f"resource {entry.name} records {sorted(undeclared)}, not in TenantOutputs")
            if entry.delete is None and entry.part_of is None:
                raise ValueError(f"resource {entry.name} has no delete and is part of nothing: teardown would leak it")
            seen.add(entry.name)

    def _upstream(self, entry: Resource) -> set[str]:
        """Every entry this one may depend on, transitively."""
        seen: set[str] = set()
        todo = list(entry.after)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.by_name[name].after)
        return seen

    # -- provisioning ----------------------------------------------------------------------

    def steps(self, scope: Scope) -> list[Step]:
        entries = [entry for entry in self.table if entry.needed(scope)]
        present = {entry.name for entry in entries}
        return [Step(e.name, tuple(d for d in e.deps(scope) if d in present)) for e in entries]

    # -- teardown --------------------------------------------------------------------------

    def _nearest_deletable(self, names: Iterable[str]) -> set[str]:
        """The nearest entries with a ``delete`` among ``names`` and, through those without
        one, their dependencies."""
        found: set[str] = set()
        todo, seen = list(names), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if self.by_name[name].delete is not None:
                found.add(name)
            else:
                todo.extend(self.by_name[name].after)
        return found

    def _teardown_steps(self) -> list[Step]:
        deletable = [entry for entry in self.table if entry.delete is not None]
        # delete_X comes after delete_Y for every deletable Y whose nearest deletable dependency is X.
        waits: dict[str, list[str]] = {entry.name: [] for entry in deletable}
        for entry in deletable:
            for dep in sorted(self._nearest_deletable(entry.after)):
                waits[dep].append(entry.teardown_step)
        steps = [Step(entry.teardown_step, tuple(waits[entry.name])) for entry in reversed(deletable)]
        validate_plan(steps)
        return steps

    def cleared_by(self, entry: Resource) -> TenantOutputs:
        """The outputs a delete of ``entry`` clears: its own and those of everything part of it."""
        keys = list(entry.outputs)
        for other in self.table:
            owner = other.part_of
            while owner is not None and owner != entry.name:
                owner = self.by_name[owner].part_of
            if owner == entry.name:
                keys += other.outputs
        return cast(TenantOutputs, dict.fromkeys(keys))

    def _teardown_handler(self, entry: Resource) -> StepHandler:
        assert entry.delete is not None
        delete, cleared = entry.delete, self.cleared_by(entry)

        async def run_step(run: TenantRun) -> TenantOutputs:
            return {**cleared, **await delete(run)}

        return run_step

    # -- settings update -------------------------------------------------------------------

    def _update_steps(self) -> list[Step]:
        updatable = {entry.name: entry for entry in self.table if entry.update is not None}
        steps = [
            Step(entry.update_name, tuple(updatable[d].update_name for d in sorted(self._upstream(entry) & set(updatable))))
            for entry in updatable.values()
        ]
        update_names = tuple(step.name for step in steps)
        for entry in self.table:
            if entry.prune is not None:
                dependents = [e.update_name for e in updatable.values() if entry.name in self._upstream(e)]
                steps.append(Step(entry.prune_name, tuple(dependents)))
        # Tags last, on every resource in its final shape.
        steps.append(Step(UPDATE_TAGS, update_names))
        validate_plan(steps)
        return steps

    def tag_targets(self, run: TenantRun) -> list[TagTarget]:
        """The tagged AWS resources of the tenant: those the entries of its plan make (the plan
        its template and settings make now, and every step its provisioning recorded), found as
        those entries name them."""
        plan = [step.name for step in self.steps(Scope(run.tpl, has_identity_providers=run.scope().has_identity_providers))]
        targets: dict[TagTarget, None] = {}
        for name in dict.fromkeys([*plan, *run.tenant.completed_steps]):
            entry = self.by_name.get(name)
            if entry is not None and entry.tagged is not None:
                targets.update(dict.fromkeys(entry.tagged(run)))
        return list(targets)

    async def update_tags(self, run: TenantRun) -> TenantOutputs:
        """Every resource of the tenant carries exactly the template's, the tenant's and the
        ownership tags; a tag the tenant removed is removed everywhere."""
        await asyncio.gather(
            *(cloud.AWS_KINDS[kind].retag(run.gw, run.cell, key, run.tags, run.owned) for kind, key in self.tag_targets(run))
        )
        return {}

    def _handlers(self) -> dict[str, StepHandler]:
        """Every step of every plan, by name."""
        table: dict[str, StepHandler] = {}
        for entry in self.table:
            table[entry.name] = ensure(entry)
            if entry.delete is not None:
                table[entry.teardown_step] = self._teardown_handler(entry)
            if entry.update is not None:
                table[entry.update_name] = entry.update
            if entry.prune is not None:
                table[entry.prune_name] = entry.prune
        table[UPDATE_TAGS] = self.update_tags
        return table


PLANS = Plans(RESOURCES)
TEARDOWN_STEPS = PLANS.teardown
UPDATE_STEPS = PLANS.update


def scope_steps(scope: Scope) -> list[Step]:
    return PLANS.steps(scope)


def provisioning_steps(template: TierTemplate, *, with_admin: bool, has_identity_providers: bool = False) -> list[Step]:
    return PLANS.steps(Scope(template, with_admin=with_admin, has_identity_providers=has_identity_providers))
