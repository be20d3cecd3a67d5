# Two commands matter: `make run` and `make test` (README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit integration e2e openapi clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[emulator,test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tenantctl db upgrade
	$(BIN)/tenantctl serve --dev

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

test: lint
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

openapi: $(STAMP)
	$(BIN)/tenantctl openapi export

clean:
	rm -rf $(VENV) var .pytest_cache
