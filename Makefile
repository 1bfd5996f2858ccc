# The README's two set-up commands: `make run` (install + main job) and `make test` (install + whole suite).
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
# `mlflow models serve` and `mlflow run` exec `uvicorn`/`python` by name: keep the venv first on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: run test install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

# test: pytest and the browser driver; team: the PostgreSQL driver; spark: pyspark (the team-mode tests use all three)
install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,team,spark]"

run: install
	$(BIN)/storefront main

test: install-test
	$(BIN)/python -m pytest

# Benchmarks: peers from the `bench` extra; the serving benchmark serves the champions of the project store,
# so the main job runs first.
bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/storefront main
	for script in benchmarks/bench_*.py; do [ $$script = benchmarks/bench_scale.py ] || $(BIN)/python $$script || exit 1; done
	# the scaling benchmark at 5k and 50k customers (about 20 min); 200k takes hours: --sizes 200000 by hand
	$(BIN)/python benchmarks/bench_scale.py --sizes 5000,50000

clean:
	rm -rf mlflow.db mlartifacts data/generated
