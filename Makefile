# Two commands matter: `make run` and `make test` (README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit openapi client clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[emulator,test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tenantctl db upgrade
	$(BIN)/tenantctl serve --dev

# ruff (pyflakes, import order, bugbear, pyupgrade), mypy --strict on domain/ (pyproject.toml),
# the layer contracts, and the Dockerfile. tests/unit/test_import_graph.py keeps import circles out.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

test: lint
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

openapi: $(STAMP)
	$(BIN)/tenantctl openapi export

# A typed Python client generated from openapi/openapi.json, into client/tenant_provisioner_client
# (use it with PYTHONPATH=client; README.md "Python client"). Offline: reads only the local document.
# tests/e2e/test_generated_client.py runs the same command. ruff on PATH formats the output.
client: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/openapi-python-client generate --path openapi/openapi.json \
		--config openapi/client-config.yaml --meta none --overwrite --output-path client/tenant_provisioner_client

# The benchmarks of issue 7 (docs/benchmarks.md), one after another, each printing its figures and
# the ratio it targets; a few minutes in all. Not part of `make test` (which holds no timing
# assertion). fast_reads, registry_scale, memory and idempotent_secrets need PostgreSQL on 127.0.0.1:5432 (user
# postgres, trust auth): each makes a database of its own and drops it.
BENCHES := critical_path bulk_onboard fast_reads registry_scale memory idempotent_secrets
bench: $(STAMP)
	@set -e; for b in $(BENCHES); do \
		echo "== bench/$$b.py"; \
		$(BIN)/python bench/$$b.py; \
	done

clean:
	rm -rf $(VENV) var .pytest_cache client
