# One command to set up and run the platform on embedded defaults (`make dev`),
# one to set up and run the tests (`make test`). Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup dev test lint bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

dev: setup
	$(VENV)/bin/mmw dev --demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check worker tests ops
	$(VENV)/bin/ruff format --check worker tests ops

bench: setup
	$(PY) ops/bench/dispatch.py
