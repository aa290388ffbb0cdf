# make run  — install, prepare the SQLite database with demo data, serve http://127.0.0.1:5000
#             with a Celery worker and scheduler on a SQLite-file broker (no server needed)
# make test — install and run the whole suite (ruff, translations, tests)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install translations bench lint format clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)
	$(BIN)/portal translations compile

run: install
	$(BIN)/portal db upgrade
	$(BIN)/portal demo load
	$(BIN)/portal tasks dev --host 127.0.0.1 --port 5000

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

translations: $(STAMP)
	$(BIN)/portal translations extract
	$(BIN)/portal translations compile

# make bench BENCH_ARGS="--only history --history-scales 0.1,1 --history-databases sqlite"
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) instance
