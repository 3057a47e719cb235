"""JupyterHub config of bench/spawn.py: the reference config on ports of our own, for both sides.

ONDEMAND_BENCH_SIDE=anchor swaps only the spawner for JupyterHub's stock LocalProcessSpawner
running jupyterhub-singleuser (same venv, same authenticator, same hub and proxy settings), with
a landing page that jupyter-server itself renders behind the hub's OAuth (see bench/spawn.py).
"""

import os

c = get_config()  # noqa: F821
load_subconfig(os.environ["ONDEMAND_HUB_REFERENCE_CONFIG"])  # noqa: F821
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['ONDEMAND_HUB_PROXY_API_PORT']}"

if os.environ.get("ONDEMAND_BENCH_SIDE") == "anchor":
    c.JupyterHub.spawner_class = "localprocess"
    c.Spawner.cmd = ["/opt/ondemand-hub/venv/bin/jupyterhub-singleuser"]
    c.Spawner.default_url = os.environ["ONDEMAND_BENCH_ANCHOR_URL"]
    # The benchmark's singleuser servers must not outlive its hub.
    c.JupyterHub.cleanup_servers = True
