# The two commands of the README: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/watchdog --config config.example.yaml run --once --demo

test: $(VENV)/.installed-test
	$(BIN)/ruff check watchdog tests bench
	$(BIN)/ruff format --check watchdog tests bench
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check watchdog tests bench

format: $(VENV)/.installed-test
	$(BIN)/ruff format watchdog tests bench
	$(BIN)/ruff check --fix watchdog tests bench

bench: $(VENV)/.installed-test
	$(BIN)/python bench/import.py

clean:
	rm -rf $(VENV) var build *.egg-info
