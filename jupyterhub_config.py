"""The reference JupyterHub configuration of ondemand-hub; `make run` starts the portal with it.

Admins copy it to /etc/jupyterhub/jupyterhub_config.py (or add the marked lines to their own).
Site content (announcements, message of the day, stage.yml) lives in /etc/ondemand-hub/.
Environment overrides used by the demo and the tests: ONDEMAND_HUB_PORT, ONDEMAND_HUB_STATE_DIR,
ONDEMAND_HUB_STAGE_COMMAND and ONDEMAND_HUB_SUBMIT_PREFIX (JSON argv lists, e.g. the sudo forms
below).
"""

import json
import os

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
# The hub as an unprivileged service account: one sudo rule (docs/security.md), then
# c.PUNSpawner.stage_command = ["sudo", "-n", "/opt/ondemand-hub/venv/bin/ondemand-stage"]
if os.environ.get("ONDEMAND_HUB_STAGE_COMMAND"):
    c.PUNSpawner.stage_command = json.loads(os.environ["ONDEMAND_HUB_STAGE_COMMAND"])
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
# A hub running as a service account runs sbatch/scancel as the user through sudo rules
# (docs/security.md):
# c.SlurmSessionSpawner.submit_prefix = ["sudo", "-n", "-u", "{username}", "--"]
if os.environ.get("ONDEMAND_HUB_SUBMIT_PREFIX"):
    c.SlurmSessionSpawner.submit_prefix = json.loads(os.environ["ONDEMAND_HUB_SUBMIT_PREFIX"])
# ------------------------------------------------------------------------------------------------

c.JupyterHub.bind_url = f"http://0.0.0.0:{os.environ.get('ONDEMAND_HUB_PORT', '8000')}"
c.JupyterHub.hub_ip = "127.0.0.1"
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
