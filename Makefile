# The two commands: `make demo` and `make test`. Both do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HORUS := $(BIN)/horus
STAMP := $(VENV)/.installed

.PHONY: setup faketime demo test test-unit stack-up stack-down bench clean

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
