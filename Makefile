# Everything starts from nothing: `make test` builds the virtual environment, installs
# the pinned Python packages, the Debian packages and the node packages the tests need,
# then runs lint, type checks and the whole test suite.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := tests/interop/node_modules/.installed

.PHONY: install node system-deps lint test test-stock smoke-lowest smoke-pinned demo bench audit lock clean

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

# smoke-lowest runs before the suite (its last lines stay pytest's summary). Then the
# stock transport path (test-stock).
test: install system-deps node lint smoke-lowest
	$(BIN)/pytest
	SSOIO_TRANSPORT=stock $(BIN)/pytest $(STOCK_SUITES)

# The stock transport path (server.transport = "stock": uvicorn's, python-engineio's and
# python-socketio's own classes; ssoio/transport/gates.py): the security, transport and
# interop suites again, every node the harnesses start on that path
# (tests/support/transport_path.py), minus the tests of protections only ssoio's classes
# have (marked ssoio_transport with their reason; deselected by tests/conftest.py).
STOCK_SUITES := tests/security tests/transport tests/interop

test-stock: install system-deps node
	SSOIO_TRANSPORT=stock $(BIN)/pytest $(STOCK_SUITES)

# pyproject.toml's ranges, tested: a throwaway virtual environment gets ssoio with every
# direct dependency at its lowest allowed version (name==floor; transitive ones float),
# then import, check-config, serve, an authenticated connect, acknowledged events, a clean
# stop, alone and clustered (scripts/smoke_deps.py). smoke-pinned: the same with
# constraints.txt. Both install from the package registry (about 30-60 s with a warm pip
# cache). See docs/operating.md, "Dependency updates".
smoke-lowest: system-deps
	$(PYTHON) scripts/smoke_deps.py lowest

smoke-pinned: system-deps
	$(PYTHON) scripts/smoke_deps.py pinned

demo: install
	$(BIN)/ssoio demo --config config/ssoio.example.toml --users config/dev-users.toml

bench: install
	$(BIN)/python benchmarks/token_verify.py
	$(BIN)/python benchmarks/policy_decisions.py

# Known advisories against what is pinned: constraints.txt (pip-audit, PyPI's advisory
# data) and tests/interop/package-lock.json (npm audit; `npm audit` runs even though the
# npm configuration says audit=false, which only concerns `npm install`). Both need their
# advisory service; when it cannot answer, this says so and fails: never a pass it did
# not get. AUDIT_SERVICE=osv asks OSV instead of PyPI.
AUDIT_SERVICE ?= pypi

audit: install
	@status=0; out=$$(mktemp); \
	echo "== pip-audit ($(AUDIT_SERVICE)): constraints.txt"; \
	$(BIN)/pip-audit --requirement constraints.txt --no-deps --disable-pip --strict \
	    --vulnerability-service $(AUDIT_SERVICE) \
	    --progress-spinner off >$$out 2>&1; code=$$?; cat $$out; \
	if [ $$code -eq 0 ]; then echo "pip-audit: no known vulnerabilities"; \
	elif grep -q 'known vulnerabilit' $$out; then status=1; echo "pip-audit: VULNERABLE pins (above)"; \
	else status=1; echo "pip-audit: NO RESULT: the advisory service could not be reached or did not answer for every package (above)"; fi; \
	echo "== npm audit: tests/interop/package-lock.json"; \
	if ! command -v npm >/dev/null 2>&1; then status=1; echo "npm audit: NO RESULT: npm is not installed (make node installs it)"; \
	else (cd tests/interop && npm audit --omit=dev) >$$out 2>&1; code=$$?; cat $$out; \
	  if [ $$code -eq 0 ]; then echo "npm audit: no known vulnerabilities"; \
	  elif grep -Eq '^[0-9]+ (low |moderate |high |critical )?(severity )?vulnerabilit' $$out; then status=1; echo "npm audit: VULNERABLE packages (above)"; \
	  else status=1; echo "npm audit: NO RESULT: the registry's audit endpoint could not be reached or refused the request (above)"; fi; \
	fi; \
	rm -f $$out; \
	if [ $$status -ne 0 ]; then echo "make audit: FAILED (vulnerable, or not checked)"; fi; \
	exit $$status

# Regenerate constraints.txt from a fresh virtual environment with the newest versions
# pyproject.toml allows (ssoio itself excluded). Then: make test, make audit, review the
# diff, commit. See docs/operating.md, "Dependency updates".
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install --quiet -e '.[dev]'; \
	"$$tmp/venv/bin/python" -m pip freeze --exclude-editable >"$$tmp/freeze.txt"; \
	grep -iv '^ssoio[=@ ]' "$$tmp/freeze.txt" >"$$tmp/constraints.txt"; \
	mv "$$tmp/constraints.txt" constraints.txt; \
	echo "constraints.txt regenerated; now: make test && make audit, review git diff constraints.txt"

clean:
	rm -rf $(VENV) tests/interop/node_modules .mypy_cache .ruff_cache .pytest_cache
