"""Schemathesis against the OpenAPI document the app serves, in-process (ASGI).

Every operation gets the schema's examples, schemathesis' coverage cases (boundary values, missing
and wrongly typed fields, missing credentials) and up to 25 generated requests in each mode (valid
and invalid), derandomized so that a run is reproducible. Every request carries a key holding every scope. The app runs with the
worker off, so POSTs only write the registry and nothing is provisioned, and with rate limits out
of the way.

Checks: no 5xx, and every response is in the document: a documented status code, the documented
content type, a body matching the documented schema, documented headers as documented; besides,
invalid input and requests without the credential are refused, and Allow is right (CHECKS).

The run ends with one line, ``FUZZ examples=<n> operations=<m> failures=<k>``: requests sent,
operations fuzzed, and distinct (operation, check) failures.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from adapters.registry.migrate import upgrade
from service.app import create_app
from service.settings import DEFAULT_TIERS_FILE
from service.tiers_file import load_tiers
from tests.helpers import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}
# Every schemathesis check that needs no stateful links, but positive_data_acceptance: it expects
# 2xx for any schema-valid request, and here valid-looking requests are rightly refused for what a
# schema cannot say (a cursor the API never issued, an expiry in the past, a tier the tiers file
# does not define, an Idempotency-Key that an earlier generated request used with another body).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,  # invalid input is refused, not accepted
    missing_required_header,
    ignored_auth,  # the request without its credential is refused
    unsupported_method,  # 405 with Allow for methods the path does not serve
    allow_header_conformance,
]
MAX_EXAMPLES = 25
CONFIG = {
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    # Most generated tiers are unknown (422); from this dictionary, 3 in 4 onboardings name a real
    # one, so the path that writes the registry is fuzzed too.
    "dictionaries": {"tiers": {"values": sorted(load_tiers(DEFAULT_TIERS_FILE))}},
    "parameters": {"body.tier": {"dictionary": "tiers", "probability": 0.75}},
}
SETTINGS = settings(
    max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def fuzz_schema(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> Iterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    asyncio.run(upgrade(url))
    app = create_app(
        database_url=url,
        aws_endpoint_url=emulator_endpoint,
        aws_strict_params=True,
        bootstrap_api_key=API_KEY,
        worker_enabled=False,
        # Prefer is a documented header, so the fuzzer sends `wait=N`; with no worker the wait
        # always runs out, and the server's cap keeps it under the client's read timeout.
        max_wait_s=1.0,
        var_dir=tmp,
        rate_limit_per_s=100_000.0,
        rate_limit_burst=100_000,
    )
    # Loading starts the app's lifespan in schemathesis' event-loop thread; it is stopped below.
    yield schemathesis.openapi.from_asgi("/schema/openapi.json", app, config=schemathesis.Config.from_dict(CONFIG))
    asgi.shutdown_lifespans()


def test_every_response_is_documented_and_none_is_a_5xx(fuzz_schema: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sent: Counter[str] = Counter()  # "examples", and one entry per status code
    failed: dict[tuple[str, str], str] = {}  # (operation, check or error) -> the first report of it

    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=AUTH)
        sent["examples"] += 1
        sent[str(response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=AUTH)
        except BaseException as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
            for failure in getattr(exc, "exceptions", [exc]):
                what = getattr(failure, "title", type(failure).__name__)
                failed.setdefault((case.operation.label, what), f"{failure}\n{case.as_curl_command(headers=AUTH)}")
            raise

    # schemathesis.pytest.from_fixture would make one pytest test per operation, but it writes
    # pytest's private Node._nodeid, which pytest 9.2 no longer has; get_all_tests is what it runs.
    operations = 0
    for result in get_all_tests(schema=fuzz_schema, test_func=check, settings=SETTINGS, given_kwargs={}):
        if isinstance(result, Err):  # an operation schemathesis cannot build requests for
            failed[(str(result.err()), "InvalidSchema")] = repr(result.err())
            continue
        operation, run = result.ok()
        operations += 1
        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - every operation runs; all failures are reported below
            if isinstance(exc, KeyboardInterrupt):
                raise
            if not any(op == operation.label for op, _ in failed):  # not a check's failure: an error
                failed[(operation.label, type(exc).__name__)] = str(exc)

    with capsys.disabled():
        print(f"\nFUZZ examples={sent['examples']} operations={operations} failures={len(failed)}")
        print("FUZZ statuses " + " ".join(f"{k}:{v}" for k, v in sorted(sent.items()) if k != "examples"))
    assert not failed, "\n\n".join(f"{op} -- {what}:\n{report}" for (op, what), report in sorted(failed.items()))
