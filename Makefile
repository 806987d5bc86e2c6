# Two commands on a fresh machine with Python 3.11+:  make run   and   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

CHROMIUM ?= /usr/bin/chromium

.PHONY: run test install browser wrk go demo clean

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

## Debian's Chromium for the browser tests (Playwright drives it; it downloads no browser).
browser:
	@test -x $(CHROMIUM) || { SUDO=$$( [ "$$(id -u)" -ne 0 ] && echo sudo ); \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; } || \
	  echo "could not install chromium: the browser tests will say so"; }

## wrk, the HTTP load generator of bench/http_load.py (its smoke test runs it).
wrk:
	@command -v wrk >/dev/null || { SUDO=$$( [ "$$(id -u)" -ne 0 ] && echo sudo ); \
	  $$SUDO apt-get install -y -q wrk >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q wrk >/dev/null; } || \
	  echo "could not install wrk: the HTTP benchmark's smoke test will say so"; }

## Go and Debian's golang.org/x/mod sources: the interoperability test builds a checker with
## sumdb/note and sumdb/tlog offline (tests/interop/tlogcheck).
go:
	@{ command -v go >/dev/null && test -d /usr/share/gocode/src/golang.org/x/mod/sumdb; } || { \
	  SUDO=$$( [ "$$(id -u)" -ne 0 ] && echo sudo ); \
	  $$SUDO apt-get install -y -q golang-go golang-golang-x-mod-dev >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && \
	    $$SUDO apt-get install -y -q golang-go golang-golang-x-mod-dev >/dev/null; } || \
	  echo "could not install Go: the interoperability test will say so"; }

## The whole test suite: SQLite, PostgreSQL (127.0.0.1:5432, user postgres), Chromium, wrk, Go.
test: install browser wrk go
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
