"""Provisioning: the table of a tenant's AWS resources (resources.py), the plans every operation
derives from it (plans.py) and the runner that executes a plan durably (runner.py).

    context.py    one tenant's run: spec, template, cell, gateways, outputs so far
    outputs.py    TenantOutputs: the typed record of ids and ARNs
    cloud.py      the tagged AWS resource kinds: list by tags, delete, re-tag (teardown, sweep)
    resources.py  one entry per resource kind: needed, after, adopt, create, update, delete
    plans.py      provisioning / teardown / update plans and their step handlers
    runner.py     ProvisionTenant, DeprovisionTenant, UpdateTenantSettings
"""

from domain.provisioning.cloud import AWS_KINDS, ROLE_KINDS
from domain.provisioning.context import Gateways, ProvisioningSettings, Scope, TenantRun
from domain.provisioning.outputs import TenantOutputs
from domain.provisioning.plans import PLANS, TEARDOWN_STEPS, UPDATE_STEPS, Plans, provisioning_steps, scope_steps
from domain.provisioning.resources import RESOURCES, Resource, admin_username
from domain.provisioning.runner import (
    DeprovisionTenant,
    LeaseLost,
    ProvisionTenant,
    Superseded,
    UpdateTenantSettings,
    first_run,
)

__all__ = [
    "AWS_KINDS",
    "PLANS",
    "Plans",
    "RESOURCES",
    "ROLE_KINDS",
    "TEARDOWN_STEPS",
    "UPDATE_STEPS",
    "DeprovisionTenant",
    "Gateways",
    "LeaseLost",
    "ProvisionTenant",
    "ProvisioningSettings",
    "Resource",
    "Scope",
    "Superseded",
    "TenantOutputs",
    "TenantRun",
    "UpdateTenantSettings",
    "admin_username",
    "first_run",
    "provisioning_steps",
    "scope_steps",
]
