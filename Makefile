# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv if needed and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_HOME ?= demo_home
DEMO_DATE ?= 2026-06-30
DEMO_HOUSEHOLDS ?= 30000
# Two counties (万州区, 涪陵区): enough households per township for the model's
# comparison with the rules at caseworker capacity to mean something.
DEMO_PLACES ?= 500101,500102

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/monitor sample --home $(DEMO_HOME) --households $(DEMO_HOUSEHOLDS) --seed 7 --date $(DEMO_DATE) --places $(DEMO_PLACES)
	$(BIN)/monitor train --home $(DEMO_HOME) --date $(DEMO_DATE)
	$(BIN)/monitor run --home $(DEMO_HOME) --date $(DEMO_DATE)

test: $(STAMP)
	$(BIN)/ruff check monitor flows tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check monitor flows tests benchmarks
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_foundation.py
	$(BIN)/python benchmarks/bench_run.py --home /tmp/monitor-bench-run --households 100000
	$(BIN)/python benchmarks/bench_train.py --home /tmp/monitor-bench-run

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .ruff_cache
