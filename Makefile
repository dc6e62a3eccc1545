# The README's two commands. Each works on a fresh machine: it creates .venv and installs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e ".[dev,s3]"

demo: install
	$(BIN)/python examples/demo.py

lint: install-dev
	$(BIN)/ruff check biolake tests benchmarks examples scripts
	$(BIN)/ruff format --check biolake tests benchmarks examples scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -n 2 --dist loadfile

bench: install-dev
	$(BIN)/python benchmarks/run.py startup

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
