#!/bin/bash
# VS Code session vscode-2, rendered by ondemand_hub.scheduler.batch.
# Every resource request is on sbatch's command line: this script holds no #SBATCH lines.
# Values from the form are validated first and printed only through shquote.
#
# code-server listens on a Unix socket in a private (0700) directory, removed at exit, with its
# own login switched off: the session's Jupyter server (hub OAuth) is the only way in, /vscode/.
set -euo pipefail

cd /home/alice/ondemand/sessions/vscode-2

if ! command -v code-server >/dev/null 2>&1; then
  echo "ondemand-hub: code-server is not installed on $(hostname)" >&2
  exit 1
fi

folder="$HOME"
folder="$HOME"/projects/model-2.1
case "/$folder/" in */../*) echo "ondemand-hub: '..' is not allowed in the folder" >&2; exit 1;; esac
[ -d "$folder" ] || { echo "ondemand-hub: no folder $folder" >&2; exit 1; }

private=$(mktemp -d "${TMPDIR:-/tmp}/ondemand-vscode.XXXXXXXX")
trap 'rm -rf -- "$private"' EXIT
trap 'exit 143' TERM INT HUP

python_json() { /opt/ondemand-hub/venv/bin/python -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
cat > "$private/jupyter_server_config.json" <<JSON
{"ServerProxy": {"servers": {"vscode": {
  "command": ["code-server", "--auth", "none", "--disable-telemetry", "--disable-update-check",
              "--socket", "{unix_socket}", "--user-data-dir", $(python_json "$HOME/.local/share/code-server"),
              $(python_json "$folder")],
  "unix_socket": $(python_json "$private/code-server.sock"), "timeout": 60,
  "launcher_entry": {"title": "VS Code"}}}}}
JSON
export JUPYTER_CONFIG_PATH="$private${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"

export JUPYTERHUB_API_URL=http://10.0.0.1:8081/hub/api
export JUPYTERHUB_SERVICE_PREFIX=/user/alice/vscode-2/
export JUPYTERHUB_DEFAULT_URL=/vscode/

echo "ondemand-hub: starting vscode on $(hostname) at $(date --iso-8601=seconds)"
/opt/ondemand-hub/venv/bin/python -c launcher /opt/ondemand-hub/venv/bin/ondemand-session-server &
wait $!
