"""ondemand_sessions: the interactive apps catalogue, the launch forms and "My sessions".

Sessions are the user's JupyterHub *named servers*, started by the hub's session spawner; this
extension (in the user's PUN) talks to the hub REST API with the PUN's own token
(:mod:`.hub`). Pages: ``{base_url}apps/``, ``apps/<app>/new``, ``sessions/``; JSON API:
``api/ondemand/sessions``. It uses the dashboard's layout and settings, so enable both:
``c.ServerApp.jpserver_extensions = {"ondemand_dashboard": True, "ondemand_sessions": True}``.
"""

from .app import SessionsExtensionApp
from .paths import STATIC_DIR, TEMPLATES_DIR

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "SessionsExtensionApp"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Tell jupyter-server which ExtensionApp this package provides."""
    return [{"module": "ondemand_sessions", "app": SessionsExtensionApp}]
