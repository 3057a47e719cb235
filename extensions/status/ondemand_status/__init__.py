"""ondemand_status: System status per cluster and partition, and quota warnings.

It uses the dashboard's layout and settings, so enable both (ondemand-pun-server does).
"""

from .app import StatusExtensionApp
from .paths import STATIC_DIR, TEMPLATES_DIR

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "StatusExtensionApp"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Tell jupyter-server which ExtensionApp this package provides."""
    return [{"module": "ondemand_status", "app": StatusExtensionApp}]
