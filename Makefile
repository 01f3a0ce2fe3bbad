# The two commands of the README: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

LOCALES := watchdog/locale
# pip says only what went wrong: -qq hides its warnings too, such as the "Location ... is
# ignored" lines a machine-wide pip configuration with missing local indexes prints for every
# package. The packaging warnings of our own project are fixed at their cause (pyproject.toml:
# SPDX license string, package-dir for a plain .pth editable install), not hidden.
PIP := $(BIN)/python -m pip -qq --disable-pip-version-check

.PHONY: run test lint format bench i18n clean

$(BIN)/python:
	@echo "creating $(VENV) and installing tthc-watchdog into it (first run only)..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@$(PIP) install -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@$(PIP) install -e '.[test]'
	@touch $@ $(VENV)/.installed

# The daemon on the demo province: every message is written to var/outbox/ (the file channel)
# and logged as it is delivered, until Ctrl-C. `run --once --demo` does one pass and exits.
run: $(VENV)/.installed
	$(BIN)/watchdog --config config.example.yaml run --demo

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

# The message catalogue (SPEC 8): extract the text of the code into watchdog.pot, merge it into
# each language's .po (then translate what is new there: an empty msgstr shows the English) and
# compile the .mo files the package ships. tests/unit/test_i18n.py fails while a message of the
# code is missing from a .po, untranslated, or the .mo is older than its .po.
i18n: $(VENV)/.installed-test
	$(BIN)/pybabel extract --project=tthc-watchdog --add-location=file --sort-by-file --no-wrap \
		--add-comments=TRANSLATORS: --output-file=$(LOCALES)/watchdog.pot watchdog
	$(BIN)/pybabel update --domain=watchdog --input-file=$(LOCALES)/watchdog.pot \
		--output-dir=$(LOCALES) --no-wrap --ignore-obsolete --no-fuzzy-matching
	$(BIN)/pybabel compile --domain=watchdog --directory=$(LOCALES) --statistics

clean:
	rm -rf $(VENV) var build *.egg-info
