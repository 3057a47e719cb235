"""ondemand_files: the portal's file explorer and editor as a jupyter-server extension.

Browse any directory the user may read (``{base_url}files/fs/<absolute path>``), upload and
download through the PUN's nginx, copy and move in the background, edit text files; see
docs/files-api.md for the URLs and the JSON API. It uses the dashboard's layout and settings,
so enable both: ``c.ServerApp.jpserver_extensions = {"ondemand_dashboard": True,
"ondemand_files": True}``.

``STATIC_DIR`` is served at ``{base_url}static/ondemand_files/``; ``TEMPLATES_DIR`` holds
``files.html`` and ``editor.html``.
"""

from .app import FilesExtensionApp
from .paths import STATIC_DIR, TEMPLATES_DIR

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "FilesExtensionApp"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Tell jupyter-server which ExtensionApp this package provides."""
    return [{"module": "ondemand_files", "app": FilesExtensionApp}]
