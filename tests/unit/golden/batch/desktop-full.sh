#!/bin/bash
# Desktop session desktop-2, rendered by ondemand_hub.scheduler.batch.
# Every resource request is on sbatch's command line: this script holds no #SBATCH lines.
# Values from the form are validated first and printed only through shquote.
#
# TigerVNC's X server listens on a Unix socket in a private (0700) directory only (no TCP port,
# so no other user of the node can reach the screen); the session's Jupyter server, behind hub
# OAuth, serves noVNC (jupyter-remote-desktop-proxy) and relays its websocket to that socket.
set -euo pipefail

cd /home/alice/ondemand/sessions/desktop-2

private=$(mktemp -d "${TMPDIR:-/tmp}/ondemand-desktop.XXXXXXXX")
# Every process of the desktop carries this in its environment, daemons too (Xfce's ssh-agent
# and gpg-agent detach from the job): at the end they are found and ended by it.
desktop_id=$(cat /proc/sys/kernel/random/uuid)
vnc_pid=""
cleanup() {
  echo "ondemand-hub: the desktop ends at $(date --iso-8601=seconds)"
  if [ -n "$vnc_pid" ]; then kill "$vnc_pid" 2>/dev/null || true; fi
  /opt/ondemand-hub/venv/bin/python -m ondemand_hub.desktop reap "$desktop_id" || true
  # Xfce's gpg-agent hides its environment from the reaper; stop it the way Xfce's own
  # logout does (gpg starts an agent again when it needs one)
  if command -v gpgconf >/dev/null 2>&1; then gpgconf --kill gpg-agent 2>/dev/null || true; fi
  rm -rf -- "$private"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

export ONDEMAND_SESSION_DIR=/home/alice/ondemand/sessions/desktop-2
export ONDEMAND_PYTHON=/opt/ondemand-hub/venv/bin/python

# What runs on the desktop: Xfce, and a screenshot for the session's card every 10 s.
cat > "$private/xstartup" <<'XSTARTUP'
#!/bin/sh
"$ONDEMAND_PYTHON" -m ondemand_hub.desktop thumbnails "$ONDEMAND_SESSION_DIR/thumbnail.png" &
cd "$HOME"
# Xfce would start an ssh-agent daemon that outlives the desktop (and hides its environment
# from the reaper): this one is the desktop's parent and ends with it.
exec ssh-agent dbus-launch --exit-with-session xfce4-session
XSTARTUP
chmod 0700 "$private/xstartup"

# noVNC's websocket (/desktop-websockify/) goes to the VNC socket started below.
cat > "$private/jupyter_server_config.json" <<JSON
{"ServerProxy": {"servers": {"desktop-websockify": {
  "unix_socket": "$private/vnc.sock", "raw_socket_proxy": true,
  "launcher_entry": {"enabled": false}}}}}
JSON
export JUPYTER_CONFIG_PATH="$private${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"

echo "ondemand-hub: starting desktop on $(hostname) at $(date --iso-8601=seconds)"
ONDEMAND_DESKTOP_ID="$desktop_id" vncserver -fg -rfbunixpath "$private/vnc.sock" -rfbunixmode 0600 -rfbport -1 -localhost yes \
  -SecurityTypes None -geometry 1920x1080 -xstartup "$private/xstartup" &
vnc_pid=$!
for _ in $(seq 300); do
  [ -S "$private/vnc.sock" ] && break
  kill -0 "$vnc_pid" 2>/dev/null || { echo "ondemand-hub: the VNC server did not start" >&2; exit 1; }
  sleep 0.1
done
[ -S "$private/vnc.sock" ] || { echo "ondemand-hub: no VNC socket after 30 s" >&2; exit 1; }
echo "ondemand-hub: desktop up at $(date --iso-8601=seconds)"

export JUPYTERHUB_API_URL=http://10.0.0.1:8081/hub/api
export JUPYTERHUB_SERVICE_PREFIX=/user/alice/desktop-2/
export JUPYTERHUB_DEFAULT_URL=/desktop/

/opt/ondemand-hub/venv/bin/python -c launcher /opt/ondemand-hub/venv/bin/ondemand-session-server &
wait $!
