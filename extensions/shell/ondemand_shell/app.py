"""The web shell: a terminal in the browser over jupyter-server's terminals, as the
user; ``ssh`` to the clusters' login hosts."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from traitlets import default

from ondemand_dashboard.paths import TEMPLATES_DIR as DASHBOARD_TEMPLATES_DIR

from .paths import STATIC_DIR, TEMPLATES_DIR


class ShellExtensionApp(ExtensionAppJinjaMixin, ExtensionApp):
    """The web shell."""

    name = "ondemand_shell"
    extension_url = "/shell/"
    load_other_extensions = True

    @default("template_paths")
    def _default_template_paths(self) -> list[str]:
        return [TEMPLATES_DIR, DASHBOARD_TEMPLATES_DIR]

    @default("static_paths")
    def _default_static_paths(self) -> list[str]:
        return [STATIC_DIR]

    def initialize_handlers(self) -> None:
        pass
