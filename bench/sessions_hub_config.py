"""JupyterHub config of the anchor side of bench/sessions.py: the reference config on ports of
our own, with stock batchspawner ``SlurmSpawner`` for every server (the benchmark starts named
servers only). ``import batchspawner`` registers its ``/hub/api/batchspawner`` port-report
handler (batchspawner's README); everything else is batchspawner's defaults (``exec_prefix``
``sudo -E -u {username}``, its own batch script), with the same request as our session: the
debug partition, 1 hour, 1 CPU, 4 GB (the jupyter app's form defaults).
"""

import os

import batchspawner  # noqa: F401  (registers the port-report API handler)

c = get_config()  # noqa: F821
load_subconfig(os.environ["ONDEMAND_HUB_REFERENCE_CONFIG"])  # noqa: F821
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['ONDEMAND_HUB_PROXY_API_PORT']}"

VENV_BIN = "/opt/ondemand-hub/venv/bin"
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.SlurmSpawner.req_partition = "debug"
c.SlurmSpawner.req_runtime = "01:00:00"
c.SlurmSpawner.req_nprocs = "1"
c.SlurmSpawner.req_memory = "4G"
# Absolute paths: sudo's secure_path drops the venv from PATH before sbatch exports it.
c.SlurmSpawner.batchspawner_singleuser_cmd = f"{VENV_BIN}/batchspawner-singleuser"
c.Spawner.cmd = [f"{VENV_BIN}/jupyterhub-singleuser"]
c.Spawner.default_url = ""
