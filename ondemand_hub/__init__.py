"""ondemand-hub: a web portal to HPC clusters built as JupyterHub plugins.

The hub side (authenticator, spawners, the privileged ``ondemand-stage`` helper) lives here;
the per-user pages live in the jupyter-server extensions ``ondemand_dashboard``,
``ondemand_files`` and ``ondemand_sessions``.
"""

__version__ = "0.1.0"

import os as _os

#: Hub page overrides (login, spawn progress, errors): ``c.JupyterHub.template_paths``.
TEMPLATES_DIR = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "templates")
