"""ondemand_dashboard: the portal's home page as a jupyter-server extension.

The dashboard shows announcements and the message of the day and provides the base layout
(``templates/base.html``) that the other portal extensions extend. Enable it with
``c.ServerApp.jpserver_extensions = {"ondemand_dashboard": True}``.

``STATIC_DIR`` is the absolute path of the files served at ``{base_url}static/ondemand_dashboard/``
(the PUN's nginx serves that prefix from it directly); ``TEMPLATES_DIR`` holds ``base.html``.
"""

from .app import DashboardExtensionApp
from .paths import STATIC_DIR, TEMPLATES_DIR

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "DashboardExtensionApp"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Tell jupyter-server which ExtensionApp this package provides."""
    return [{"module": "ondemand_dashboard", "app": DashboardExtensionApp}]
