# Two entry points for a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format install clean release-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## The main job on the embedded sandbox: start it, backfill, schedule, serve.
demo: $(STAMP)
	$(BIN)/runway-costs demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## The whole suite: lint, unit and integration tests (real DuckDB, HTTP, browser).
## The installed wheel is checked first, so pytest's summary is the run's last line.
test: $(STAMP) lint
	$(MAKE) --no-print-directory release-check
	$(BIN)/python -m tests.setup_browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

## Build the wheel, install it in a fresh venv outside the checkout, run the main commands there.
release-check: $(STAMP)
	$(BIN)/python -m tests.release_check

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
