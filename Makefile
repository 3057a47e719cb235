# ondemand-hub: `make run` sets up and starts the portal; `make test` sets up and runs the tests.
# Both install everything they need (Debian packages, /opt/ondemand-hub/venv, npm libraries).
VENV := /opt/ondemand-hub/venv
PY := $(VENV)/bin/python

.PHONY: setup setup-test run test lint bench-spawn bench-files bench-sessions

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test
	bash scripts/slurm.sh start

# `make run SLURM=1`: also start the single-node Slurm of scripts/slurm.sh and make it a cluster
# (clusters.d/ondemand.yml, written only if absent). Without SLURM=1 nothing of this happens.
CLUSTERS_D := /etc/ondemand-hub/clusters.d
run: setup
ifeq ($(SLURM),1)
	bash scripts/slurm.sh start
	@if [ ! -e $(CLUSTERS_D)/ondemand.yml ]; then \
	  install -d -m 0755 $(CLUSTERS_D) && \
	  printf '%s\n' 'v2:' '  metadata:' '    title: "Local Slurm (ondemand)"' \
	    '  job:' '    adapter: slurm' >$(CLUSTERS_D)/ondemand.yml && \
	  echo "wrote $(CLUSTERS_D)/ondemand.yml"; \
	fi
endif
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

bench-sessions: setup-test
	$(PY) bench/sessions.py
