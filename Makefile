# ondemand-hub: `make run` sets up and starts the portal; `make test` sets up and runs the tests.
# Both install everything they need (Debian packages, /opt/ondemand-hub/venv, npm libraries).
VENV := /opt/ondemand-hub/venv
PY := $(VENV)/bin/python

.PHONY: setup setup-test run test lint bench-spawn bench-files

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test
	bash scripts/slurm.sh start

run: setup
	$(VENV)/bin/jupyterhub -f jupyterhub_config.py

lint: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup-test
	bash scripts/test.sh

bench-spawn: setup-test
	$(PY) bench/spawn.py

bench-files: setup-test
	$(PY) bench/files.py
