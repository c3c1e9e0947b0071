# The two commands of README.md: `make run` sets up and runs the service, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint typecheck format demo check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/wallet serve

demo: $(STAMP)
	$(BIN)/wallet demo

check: $(STAMP)
	$(BIN)/wallet check

lint: $(STAMP)
	$(BIN)/ruff check wallet tests loadtests
	$(BIN)/ruff format --check wallet tests loadtests

format: $(STAMP)
	$(BIN)/ruff check --fix wallet tests loadtests
	$(BIN)/ruff format wallet tests loadtests

typecheck: $(STAMP)
	$(BIN)/mypy wallet loadtests

# Everything CI runs: lint, types, then the whole suite (SQLite and PostgreSQL, real processes, Chromium).
# The OpenID Provider the sign-in tests run (tests/oidc_provider.py): oidc-provider from npm, pinned by the lockfile.
OIDC_PROVIDER := tests/oidc/node_modules/.package-lock.json
$(OIDC_PROVIDER): tests/oidc/package.json tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error
	touch $(OIDC_PROVIDER)

test: lint typecheck $(OIDC_PROVIDER)
	$(BIN)/python -m pytest

# The inner loop: SQLite only, no browser, on every core.
test-fast: $(STAMP) $(OIDC_PROVIDER)
	WALLET_TEST_POSTGRES_DSN= $(BIN)/python -m pytest -n auto -m "not browser and not postgres_only" -q

clean:
	rm -rf $(VENV) data tests/oidc/node_modules
