# The two commands a new user needs:
#   make demo   install into .venv and start `treu demo` (SQLite file, seeded Kiezcafé programme)
#   make test   install into .venv and run the whole suite: lint, types, layers, tests on SQLite and PostgreSQL
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install bench clean chromium screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) chromium

# The browser tests (tests/web) drive Debian's chromium through Playwright; Playwright's own
# browser download is never used. Installed once, with sudo when not root.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  APT="$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get"; \
	  $$APT install -y chromium || { $$APT update && $$APT install -y chromium; }; \
	fi

demo: $(STAMP)
	$(BIN)/treu demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint chromium
	$(BIN)/pytest

# PNGs of the portal and console for the README (docs/screenshots/), from a seeded temporary demo
screenshots: $(STAMP) chromium
	$(BIN)/python scripts/screenshots.py --out docs/screenshots

bench: $(STAMP)
	$(BIN)/python bench/earn.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
