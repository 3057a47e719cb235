"""System status per cluster and partition, and quota warnings."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from traitlets import default

from ondemand_dashboard.paths import TEMPLATES_DIR as DASHBOARD_TEMPLATES_DIR

from .paths import STATIC_DIR, TEMPLATES_DIR


class StatusExtensionApp(ExtensionAppJinjaMixin, ExtensionApp):
    """System status per cluster and partition, and quota warnings."""

    name = "ondemand_status"
    extension_url = "/status/"
    load_other_extensions = True

    @default("template_paths")
    def _default_template_paths(self) -> list[str]:
        return [TEMPLATES_DIR, DASHBOARD_TEMPLATES_DIR]

    @default("static_paths")
    def _default_static_paths(self) -> list[str]:
        return [STATIC_DIR]

    def initialize_handlers(self) -> None:
        pass
