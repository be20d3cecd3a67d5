"""Onboarding time by tier template: the shipped tiers and the example that uses every field.

With the emulator adding L ms to every call (default 50), ``tenantctl serve`` (SQLite registry,
in-process worker) onboards N tenants of each tier, one at a time, with ``Prefer: wait=60``; the
median per tier, the number of plan steps, and the depth of the plan's critical path (the longest
chain of steps that depend on each other, which sets the floor of an onboarding when independent
steps run concurrently). The example tier (docs/examples/tiers-full.toml: three app clients, a
resource server, two extra roles, a role mapping) adds steps, but they run beside the others.

Prints one line per tier. Exits non-zero only on a crash. Usage:

    .venv/bin/python bench/tier_templates.py [--runs N] [--latency-ms L]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from domain.plan import Step  # noqa: E402
from domain.provisioning import provisioning_steps  # noqa: E402
from service.tiers_file import load_tiers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIERS = ("basic", "standard", "premium", "enterprise")


def depth(steps: list[Step]) -> int:
    after = {s.name: s.after for s in steps}
    memo: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in memo:
            memo[name] = 1 + max((level(d) for d in after[name]), default=0)
        return memo[name]

    return max(level(s.name) for s in steps)


def onboard_once(client: httpx.Client, tier: str) -> float:
    tenant_id = f"tt-{uuid.uuid4().hex[:10]}"
    body = {"tenant_id": tenant_id, "tier": tier, "display_name": "Bench", "admin_email": f"a@{tenant_id}.example"}
    started = time.perf_counter()
    response = client.post("/v1/tenants", json=body, headers={"Prefer": "wait=60"})
    elapsed = time.perf_counter() - started
    if response.status_code != 201 or response.json().get("status") != "active":
        raise RuntimeError(f"onboarding {tenant_id} ({tier}) did not end active: {response.status_code} {response.text[:500]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-tiers-") as scratch, contextlib.ExitStack() as stack:
        tiers_file = Path(scratch) / "tiers.toml"
        tiers_file.write_text((ROOT / "service" / "tiers.toml").read_text() + "\n" + (ROOT / "docs" / "examples" / "tiers-full.toml").read_text())
        templates = load_tiers(tiers_file)
        emu = stack.enter_context(_common.emulator(latency_ms=args.latency_ms))
        svc = stack.enter_context(_common.service(emu.url, env={"TENANTS_TIERS_FILE": str(tiers_file)}))
        http = stack.enter_context(httpx.Client(base_url=svc.url, headers=svc.headers, timeout=120))
        times: dict[str, list[float]] = {tier: [] for tier in TIERS}
        for _ in range(args.runs):
            for tier in TIERS:
                times[tier].append(onboard_once(http, tier))
    print(f"tier templates: {args.runs} onboardings per tier, emulator latency {args.latency_ms:.0f} ms per call")
    for tier in TIERS:
        steps = provisioning_steps(templates[tier], with_admin=True)
        print(
            f"  {tier:<10} steps {len(steps):>2}  critical path {depth(steps):>2} steps  "
            f"median {_common.median(times[tier]) * 1000:7.0f} ms"
        )


if __name__ == "__main__":
    main()
