# The two commands a new user needs:
#   make demo   install into .venv and start `treu demo` (SQLite file, seeded Kiezcafé programme)
#   make test   install into .venv and run the whole suite: lint, types, layers, tests on SQLite and PostgreSQL
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/treu demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/earn.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
