# `make` runs lint and tests. `make demo` is the quick start: install, index the bundled
# sample coverage, answer example questions. Everything installs into ./.venv.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# What `install` puts into the venv. The Dockerfile runs this same recipe with
# VENV=/opt/coverbot PACKAGE=. (the bot alone, not editable, no dev tools).
PACKAGE ?= -e '.[dev]'

.DEFAULT_GOAL := check
.PHONY: install demo chat test test-fast lint format typecheck check clean

$(BIN)/coverbot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PACKAGE)
	touch $@

install: $(BIN)/coverbot

demo: install
	$(BIN)/coverbot demo

chat: install
	$(BIN)/coverbot chat

# The full suite: what CI runs.
test: install
	$(BIN)/python -m pytest

# Everything but the tests marked slow (subprocesses, full corpora, big deliveries): < 60 s.
test-fast: install
	$(BIN)/python -m pytest -m "not slow" -n auto

lint: install
	$(BIN)/ruff check bot index tests benchmarks
	$(BIN)/ruff format --check bot index tests benchmarks
	$(BIN)/hadolint Dockerfile

format: install
	$(BIN)/ruff format bot index tests benchmarks
	$(BIN)/ruff check --fix bot index tests benchmarks

typecheck: install
	$(BIN)/mypy bot index

check: lint test

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
