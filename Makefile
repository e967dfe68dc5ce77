# The two commands: `make demo` and `make test`. Both do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HORUS := $(BIN)/horus
STAMP := $(VENV)/.installed

.PHONY: setup faketime demo lint test test-unit mutation stack-up stack-down bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

# libfaketime: `horus chaos` runs some workers with their clock shifted (LD_PRELOAD). Installed once from the
# distribution (Debian/Ubuntu: the faketime package); a machine without it and without apt-get fails here.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
faketime:
	@command -v faketime >/dev/null || { echo "installing faketime (clock skew for horus chaos)"; \
	  $(SUDO) apt-get install -y -q faketime >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q faketime >/dev/null; }; } || \
	  { echo "could not install faketime (libfaketime): install it with your package manager" >&2; exit 1; }

setup: $(STAMP) faketime

demo: setup
	$(HORUS) demo $(DEMO_ARGS)

# The house's rules (docs/architecture.md), fast and before anything slow: lint and format (ruff), types (mypy),
# and the import contracts of DESIGN's boundaries (import-linter, [tool.importlinter] in pyproject.toml).
CODE := horus streams projections bench tests
lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/lint-imports
	$(BIN)/mypy

# the whole suite against the real broker, database and EVM node; the stack is stopped afterwards
test: setup
	$(HORUS) stack up
	$(HORUS) topics create
	$(HORUS) db upgrade
	status=0; $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: that is a failure" >&2; fi; \
	  $(HORUS) stack down; exit $$status

test-unit: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# Mutation testing of the money rules: decide's sizing, caps and guards, the fee formula, reply classification and
# evidence settlement ([tool.mutmut] in pyproject.toml). mutmut changes them one mutant at a time and runs their unit
# tests against each; a mutant no test notices is a rule no test pins. Prints the score and every survivor, and fails
# under MUTATION_MIN %. Not part of `make test`: ~2,400 mutants take several minutes of both cores, too slow for CI.
MUTATION_MIN ?= 95
mutation: setup
	rm -rf mutants && mkdir mutants
	start=$$SECONDS; HYPOTHESIS_PROFILE=mutation $(BIN)/mutmut run --max-children 2 >mutants/run.log 2>&1 || { tail -50 mutants/run.log; exit 1; }; \
	  seconds=$$((SECONDS - start)); $(BIN)/mutmut export-cicd-stats >/dev/null && $(BIN)/mutmut results && \
	  $(BIN)/python -c 'import json, sys; s = json.load(open("mutants/mutmut-cicd-stats.json")); \
	    score = 100 * s["killed"] / s["total"]; \
	    print("mutants {total}: killed {killed}, survived {survived}, timeouts {timeout}, no tests {no_tests}".format(**s)); \
	    print(f"score {score:.1f}% (minimum {sys.argv[2]}%), in {sys.argv[1]} s"); \
	    sys.exit(score < float(sys.argv[2]))' $$seconds $(MUTATION_MIN)

stack-up: setup
	$(HORUS) stack up

stack-down:
	$(HORUS) stack down

bench: setup
	$(HORUS) stack up
	$(BIN)/python bench/kafka_passthrough.py
	$(BIN)/python bench/stage_passthrough.py
	$(BIN)/python bench/projection_fold.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/decide.py
	$(BIN)/python bench/decide_rebuild.py
	$(BIN)/python bench/signing.py
	$(BIN)/python bench/venue_simulator.py
	$(BIN)/python bench/execute.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/chaos.py

clean:
	-$(HORUS) stack down
	rm -rf $(VENV) .horus
