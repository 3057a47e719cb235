#!/bin/bash
# JupyterLab session jupyter-3, rendered by ondemand_hub.scheduler.batch.
# Every resource request is on sbatch's command line: this script holds no #SBATCH lines.
# Values from the form are validated first and printed only through shquote.
set -euo pipefail

cd /home/alice/ondemand/sessions/jupyter-3


export JUPYTERHUB_API_URL=http://10.0.0.1:8081/hub/api
export JUPYTERHUB_SERVICE_PREFIX=/user/alice/jupyter-3/
export JUPYTERHUB_DEFAULT_URL=/lab

echo "ondemand-hub: starting jupyter on $(hostname) at $(date --iso-8601=seconds)"
# The server (and JupyterLab's file browser) starts in the home folder, not the session's.
exec /opt/ondemand-hub/venv/bin/jupyterhub-singleuser --ServerApp.ip=0.0.0.0 --ServerApp.root_dir="$HOME"
