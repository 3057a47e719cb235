#!/bin/bash
# JupyterLab session jupyter-3, rendered by ondemand_hub.scheduler.batch.
# Every resource request is on sbatch's command line: this script holds no #SBATCH lines.
# Values from the form are validated first and printed only through shquote.
set -euo pipefail

cd /home/alice/ondemand/sessions/jupyter-3


# The job's nodes for the app, one host name per line (Slurm's order): in
# $ONDEMAND_NODES and in the file "nodes" of the session folder (docs/apps.md).
if [ -n "${SLURM_JOB_NODELIST:-}" ]; then
  ONDEMAND_NODES=$(scontrol show hostnames "$SLURM_JOB_NODELIST")
else
  ONDEMAND_NODES=$(hostname)
fi
export ONDEMAND_NODES
printf '%s\n' "$ONDEMAND_NODES" > nodes

export JUPYTERHUB_API_URL=http://10.0.0.1:8081/hub/api
export JUPYTERHUB_SERVICE_PREFIX=/user/alice/jupyter-3/
export JUPYTERHUB_DEFAULT_URL=/lab

echo "ondemand-hub: starting jupyter on $(hostname) at $(date --iso-8601=seconds)"
# The server (and JupyterLab's file browser) starts in the home folder, not the session's.
exec /opt/ondemand-hub/venv/bin/jupyterhub-singleuser --ServerApp.ip=0.0.0.0 --ServerApp.root_dir="$HOME"
