# Everything starts from nothing: `make test` builds the virtual environment, installs
# the pinned Python packages, the Debian packages and the node packages the tests need,
# then runs lint, type checks and the whole test suite.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := tests/interop/node_modules/.installed

.PHONY: install node system-deps lint test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

system-deps:
	scripts/ensure-system-deps

node: $(NODE_STAMP)

$(NODE_STAMP): tests/interop/package.json tests/interop/package-lock.json
	scripts/ensure-system-deps node npm
	cd tests/interop && npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install system-deps node lint
	$(BIN)/pytest

demo: install
	$(BIN)/ssoio demo --config config/ssoio.example.toml --users config/dev-users.toml

bench: install
	$(BIN)/python benchmarks/token_verify.py
	$(BIN)/python benchmarks/policy_decisions.py

clean:
	rm -rf $(VENV) tests/interop/node_modules .mypy_cache .ruff_cache .pytest_cache
