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

# `make run SLURM=1`: also start the Slurm cluster of scripts/slurm.sh (this host's node, and two
# compute nodes in network namespaces of their own: docs/deployment.md) and make it the cluster
# of sessions (clusters.d/ondemand.yml, marked as ours); the hub's API then listens on the
# portal's address on the compute nodes' bridge, where their sessions reach it. Without SLURM=1, sessions run on this
# host (the built-in local cluster): a clusters.d/ondemand.yml that a SLURM=1 run wrote is removed;
# any other cluster file is the site's and is left alone.
#
# `make run SUBDOMAIN_HOST=http://portal.localhost:8000`: one origin per user (the hub at
# portal.localhost:8000, alice at alice.portal.localhost:8000), as production runs it
# (docs/security.md). Without it every user shares one origin: the demo's documented limit.
SUBDOMAIN_HOST ?=
CLUSTERS_D := /etc/ondemand-hub/clusters.d
MARK := \# written by make run SLURM=1
# the portal's address on the compute nodes' bridge (scripts/slurm.sh's BRIDGE_IP)
HUB_IP := $(if $(filter 1,$(SLURM)),10.77.0.1,)
run: setup
ifeq ($(SLURM),1)
	bash scripts/slurm.sh start
	@if [ ! -e $(CLUSTERS_D)/ondemand.yml ]; then \
	  install -d -m 0755 $(CLUSTERS_D) && \
	  printf '%s\n' '$(MARK)' 'v2:' '  metadata:' '    title: "Local Slurm (ondemand)"' \
	    '  job:' '    adapter: slurm' >$(CLUSTERS_D)/ondemand.yml && \
	  echo "wrote $(CLUSTERS_D)/ondemand.yml"; \
	fi
else
	@if [ -e $(CLUSTERS_D)/ondemand.yml ] && head -1 $(CLUSTERS_D)/ondemand.yml | grep -qx '$(MARK)'; then \
	  rm -f $(CLUSTERS_D)/ondemand.yml && echo "removed $(CLUSTERS_D)/ondemand.yml (SLURM=1 to use Slurm)"; \
	fi
endif
	ONDEMAND_HUB_SUBDOMAIN_HOST='$(SUBDOMAIN_HOST)' ONDEMAND_HUB_HUB_IP='$(HUB_IP)' \
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
