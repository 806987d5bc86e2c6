# Two commands on a fresh machine with Python 3.11+:  make run   and   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install demo clean

$(BIN)/kapok: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/kapok

install: $(BIN)/kapok

## Kapok on the embedded SQLite store (./var/kapok.db), seeded with the Tambopata demo data.
run: install
	$(BIN)/kapok demo
	$(BIN)/kapok serve --host $(HOST) --port $(PORT)

## The whole test suite: SQLite and PostgreSQL (127.0.0.1:5432, user postgres).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
