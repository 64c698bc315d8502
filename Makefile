# The two commands of the README, and the steps they stand on.
#   make demo   build the database from data/ on DuckDB, then open the dashboard
#   make test   run the whole test suite (DuckDB and PostgreSQL)
#   make lint   ruff and sqlfluff, as CI runs them before the tests

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: demo build test lint bench clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

build: $(BIN)/.installed
	$(BIN)/python -m scripts.build

demo: build
	$(BIN)/streamlit run dashboard.py --server.port $(PORT)

test: $(BIN)/.installed
	$(BIN)/python -m pytest

# ruff (lint, then the format check) over the Python; sqlfluff over the views as PostgreSQL renders them
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint views/

bench: $(BIN)/.installed
	$(BIN)/pip install --quiet -r requirements-bench.txt
	$(BIN)/python -m scripts.benchmark

clean:
	rm -rf $(VENV) data/*.duckdb data/*.duckdb.wal .pytest_cache
