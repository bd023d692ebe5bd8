# The two commands a fresh machine needs (see README):
#   make demo   set up, then triage sample tickets end to end on the embedded defaults
#   make test   set up with test tools, lint, run the test suite
PY := .venv/bin/python

.PHONY: setup setup-dev demo test lint

setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup.sh --dev

demo: setup
	bash scripts/demo.sh

lint:
	$(PY) -m ruff check src tests scripts

test: setup-dev lint
	$(PY) -m pytest -q
