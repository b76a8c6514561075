# Hopper: `make run` runs the service, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install run test test-fast lint format bench profile services clean mutation

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Hopper needs Python 3.11+"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/hopper migrate
	$(BIN)/hopper local-setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -p $(PORT)

services:
	bash scripts/services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit --quiet --recursive api workers domain --severity-level medium

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install services lint
	bash scripts/test.sh

test-fast: install
	$(BIN)/pytest tests/unit -q

# Not part of `make test`: mutmut over the domain's rules, then the score (scripts/mutation.sh).
mutation: install
	bash scripts/mutation.sh

# The bench's own database, vhost and Redis database: it empties them, never the tests' ones.
BENCH_ENV = HOPPER_TEST_DATABASE=hopper_bench HOPPER_TEST_VHOST=hopper_bench HOPPER_TEST_REDIS_DB=6

bench: install
	$(BENCH_ENV) bash scripts/services.sh
	$(BENCH_ENV) $(BIN)/python -m bench

# Where the time goes under load (py-spy): WHAT=submit, get or drain.
WHAT ?= submit
profile: install
	$(BENCH_ENV) bash scripts/services.sh
	$(BENCH_ENV) $(BIN)/python -m bench.profile $(WHAT)

clean:
	rm -rf $(VENV) var .pytest_cache mutants
