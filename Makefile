# Two commands: `make run` (the demo fan line on SQLite, local simulator) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist processes: more than the cores, as most tests wait on servers and subprocesses
TEST_PROCESSES ?= 4
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test install train lint validate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,accurate]"
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

train: install
	$(BIN)/fanline train

run: train
	$(BIN)/fanline run

lint: install
	$(BIN)/ruff check bot actions tests bench
	$(BIN)/ruff format --check bot actions tests bench

validate: install
	$(BIN)/fanline validate

test: train lint validate
	$(BIN)/python -m pytest -q -n $(TEST_PROCESSES) --cov --cov-report=term
	$(BIN)/fanline test

bench: train
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) models .fanline results
