"""ondemand_shell: The web shell: a terminal in the browser over jupyter-server's terminals, as the
user; ``ssh`` to the clusters' login hosts.

It uses the dashboard's layout and settings, so enable both (ondemand-pun-server does).
"""

from .app import ShellExtensionApp
from .paths import STATIC_DIR, TEMPLATES_DIR

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "ShellExtensionApp"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Tell jupyter-server which ExtensionApp this package provides."""
    return [{"module": "ondemand_shell", "app": ShellExtensionApp}]
