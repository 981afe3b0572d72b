# Every target sets up first (idempotent), so each works on a fresh Debian machine.
PY := .venv/bin/python

.PHONY: setup run test lint bench

setup:
	bash scripts/setup.sh

run: setup
	LAN=$(LAN) $(PY) -m testkit.devrun

test: setup
	$(PY) -m pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy core signaling media verify approval testkit tests bench
	.venv/bin/lint-imports

bench: setup
	@for b in bench/[a-z]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
