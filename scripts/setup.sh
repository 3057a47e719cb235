#!/usr/bin/env bash
# Installs everything ondemand-hub needs on a fresh Debian bookworm machine, as root:
# Debian packages, a virtualenv every account can run (/opt/ondemand-hub/venv, from Debian's
# python3 — per-user processes cannot run an interpreter inside root's home), the package,
# and the front-end libraries from npm. Idempotent: a second run only refreshes the package.
#   scripts/setup.sh          what `make run` needs
#   scripts/setup.sh --test   plus test tools (Chromium for the browser tests)
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=/opt/ondemand-hub
APT_PACKAGES=(nginx sudo python3 python3-venv python3-dev nodejs npm libpam0g passwd procps curl)
# the Desktop app's compute-node side (this machine is its own compute node): TigerVNC, Xfce
APT_PACKAGES+=(tigervnc-standalone-server tigervnc-tools xfce4-session xfwm4 xfce4-panel
  xfdesktop4 xfce4-terminal dbus-x11 xfonts-base)
# libnss-myhostname: *.localhost resolves to this machine for every client (the per-user origin
# tests' alice.portal.localhost; its postinst adds "myhostname" to /etc/nsswitch.conf)
[ "${1:-}" = "--test" ] && APT_PACKAGES+=(chromium fonts-dejavu-core openssh-server libnss-myhostname)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  # nodejs/npm may come from elsewhere (a newer node on PATH); only install what is absent
  case "$p" in nodejs) command -v node >/dev/null && continue ;; npm) command -v npm >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ] && ! grep -qE '^hosts:.*\bmyhostname\b' /etc/nsswitch.conf; then
  sed -i -E 's/^(hosts:[[:space:]]+files)/\1 myhostname/' /etc/nsswitch.conf
fi

mkdir -p "$PREFIX/share"
if [ ! -x "$PREFIX/venv/bin/python" ]; then
  /usr/bin/python3 -m venv "$PREFIX/venv"
  "$PREFIX/venv/bin/pip" install -q --upgrade pip
fi
extra=""
[ "${1:-}" = "--test" ] && extra="[test]"
# dependencies as pinned ranges in setup.cfg; then this checkout's code, always reinstalled
"$PREFIX/venv/bin/pip" install -q ".$extra"
"$PREFIX/venv/bin/pip" install -q --no-deps --force-reinstall .
"$PREFIX/venv/bin/python" -c "import ondemand_hub, ondemand_dashboard"

cp package.json package-lock.json "$PREFIX/share/"
(cd "$PREFIX/share" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
chmod -R a+rX "$PREFIX"
mkdir -p /etc/ondemand-hub/announcements.d
# ondemand-stage's root-owned trees, made now so that no local user can make one first (it checks
# every level at each start and refuses a link or another account's directory). /var/tmp lets
# anyone create names: systemd-tmpfiles keeps /var/tmp/ondemand-hub (never aged) and remakes the
# /run one at boot.
for d in /var/lib/ondemand-hub /var/lib/ondemand-hub/stage /var/lib/ondemand-hub/stage/config \
  /var/lib/ondemand-hub/stage/state /run/ondemand-hub /var/log/ondemand-hub /var/tmp/ondemand-hub; do
  if [ -L "$d" ] || { [ -e "$d" ] && [ "$(stat -c %u "$d")" != 0 ]; }; then
    echo "setup: $d exists and is not root's own directory: someone made it first; remove it" >&2
    exit 1
  fi
  mode=0755; [ "$d" = /var/lib/ondemand-hub/stage/state ] && mode=0700
  install -d -o root -g root -m "$mode" "$d"
done
printf '%s\n' "d /run/ondemand-hub 0755 root root -" "d /var/tmp/ondemand-hub 0755 root root -" \
  >/etc/tmpfiles.d/ondemand-hub.conf
echo "setup: done ($PREFIX)"
