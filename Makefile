# The two commands of README.md: `make run` sets up and runs the service, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test demo check clean

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

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data
