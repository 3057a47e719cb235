"""The reference JupyterHub configuration of ondemand-hub; `make run` starts the portal with it.

Admins copy it to /etc/jupyterhub/jupyterhub_config.py (or add the marked lines to their own).
Site content (announcements, message of the day, stage.yml) lives in /etc/ondemand-hub/.
Environment overrides used by the demo and the tests: ONDEMAND_HUB_PORT, ONDEMAND_HUB_STATE_DIR,
ONDEMAND_HUB_SUBDOMAIN_HOST and ONDEMAND_HUB_STAGE_COMMAND (a JSON argv list, e.g. the sudo form
below).
"""

import json
import os
from urllib.parse import urlparse

import ondemand_hub

c = get_config()  # noqa: F821  (injected by JupyterHub)

state_dir = os.environ.get("ONDEMAND_HUB_STATE_DIR", "/var/lib/ondemand-hub/hub")
os.makedirs(state_dir, mode=0o700, exist_ok=True)

# --- the lines an existing JupyterHub site adds -------------------------------------------------
c.JupyterHub.authenticator_class = "ondemand-pam"  # PAM + local-account mapping and checks
# every user's default server is their PUN; named servers are app sessions (Slurm jobs)
c.JupyterHub.spawner_class = "portal"
c.JupyterHub.cleanup_servers = False  # PUNs and sessions outlive a hub restart
c.JupyterHub.template_paths = [ondemand_hub.TEMPLATES_DIR]  # login and spawn pages, branded
# The portal's name on hub pages; on the dashboard it is c.DashboardExtensionApp.site_title in
# /etc/ondemand-hub/jupyter/jupyter_server_config.py (read by every PUN).
c.JupyterHub.template_vars = {
    "site_title": os.environ.get("ONDEMAND_HUB_SITE_TITLE", "ondemand-hub")
}
# The hub as an unprivileged service account: one sudo rule (docs/security.md), then, for the
# PUNs and the sessions alike (every action as a user goes through ondemand-stage):
# c.StageClient.stage_command = ["sudo", "-n", "/opt/ondemand-hub/venv/bin/ondemand-stage"]
if os.environ.get("ONDEMAND_HUB_STAGE_COMMAND"):
    c.StageClient.stage_command = json.loads(os.environ["ONDEMAND_HUB_STAGE_COMMAND"])
# ------------------------------------------------------------------------------------------------

# --- interactive app sessions: named servers are Slurm jobs (SlurmSessionSpawner) --------------
# The default server ("") is the PUN; every named server is a session. PortalSpawner ("portal")
# picks the class by server name; configure each as c.PUNSpawner / c.SlurmSessionSpawner.
# Sessions go to the first cluster of /etc/ondemand-hub/clusters.d/ (`make run SLURM=1` writes
# one for the local Slurm); with none there, to the built-in "local" cluster: the app runs as a
# process tree of the user on this host (docs/local-cluster.md).
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 10
# Sharing a session with a collaborator (JupyterHub sharing, from the session's card): users may
# share their own servers, with people named by login (docs/sessions.md, "Sharing").
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "shares!user", "read:users:name"]},
]
# Sessions run sbatch, scancel and their other commands as the user through ondemand-stage
# (`user run`, the same account checks as a PUN): c.StageClient.stage_command above.
# ------------------------------------------------------------------------------------------------

# --- one origin per user (production; docs/security.md, "One origin per user") ----------------
# With subdomain_host every user's PUN and sessions are served from <user>.<portal host> and the
# hub from the bare host, so a page one user controls (their own session server runs their own
# code) cannot script another user's pages. It needs a wildcard DNS record and, for https, a
# wildcard certificate. Without it (the demo) all users share one origin, and any user can take
# over another's account with a link to a page of their own session; `ondemand-hub doctor`
# warns about it. `make run SUBDOMAIN_HOST=http://portal.localhost:8000` tries it on one machine
# (*.localhost resolves to this machine in browsers).
subdomain_host = os.environ.get("ONDEMAND_HUB_SUBDOMAIN_HOST", "")
if subdomain_host:
    c.JupyterHub.subdomain_host = subdomain_host
# the public port: ONDEMAND_HUB_PORT, else the subdomain host's, else 8000
port = os.environ.get("ONDEMAND_HUB_PORT") or str(urlparse(subdomain_host).port or 8000)
c.JupyterHub.bind_url = f"http://0.0.0.0:{port}"
# The hub's API, which session servers call: loopback, unless they run on other hosts (compute
# nodes): then an address they reach, e.g. the portal's on the test cluster's bridge
# (scripts/slurm.sh; `make run SLURM=1` and the tests set it). docs/deployment.md.
c.JupyterHub.hub_ip = os.environ.get("ONDEMAND_HUB_HUB_IP") or "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("ONDEMAND_HUB_HUB_PORT", "8081"))
c.JupyterHub.db_url = f"sqlite:///{state_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state_dir}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{state_dir}/jupyterhub.pid"
c.ConfigurableHTTPProxy.pid_file = f"{state_dir}/jupyterhub-proxy.pid"
# configurable-http-proxy from npm, installed by `make` beside the venv
c.ConfigurableHTTPProxy.command = [
    "/opt/ondemand-hub/share/node_modules/.bin/configurable-http-proxy"
]
# The hub starts the proxy (and restarts it with itself; PUNs keep running either way). Sites
# that want open connections to survive a hub restart run CHP as its own service and set
# c.ConfigurableHTTPProxy.should_start = False with a shared CONFIGPROXY_AUTH_TOKEN.
c.ConfigurableHTTPProxy.should_start = True

# A visit to a PUN that was stopped (idle clean-up) starts it again after a second.
c.JupyterHub.implicit_spawn_seconds = 1
c.OnDemandPAMAuthenticator.min_uid = 1000
c.Spawner.default_url = "/dashboard"
