"""ondemand_jobs: Active jobs (all clusters) and the job composer.

It uses the dashboard's layout and settings, so enable both (ondemand-pun-server does).
"""

from .app import JobsExtensionApp
from .paths import STATIC_DIR, TEMPLATES_DIR

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "JobsExtensionApp"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Tell jupyter-server which ExtensionApp this package provides."""
    return [{"module": "ondemand_jobs", "app": JobsExtensionApp}]
