"""``status/``: the System status page. It renders the layout at once and ``static/status.js``
fills it from :mod:`.api` (a dead controller takes Slurm ~9 s to give up: the page must not
wait for it), then refreshes it every ``refresh_interval`` seconds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ondemand_dashboard.handlers import PortalPageHandler

if TYPE_CHECKING:
    from .app import StatusExtensionApp


class StatusPageHandler(PortalPageHandler):
    """The System status page: a card per cluster with a chart and a table of partitions."""

    nav_id = "status"

    @property
    def status_app(self) -> StatusExtensionApp:
        return self.settings["ondemand_status"]  # type: ignore[no-any-return]

    @web.authenticated
    @authorized
    def get(self) -> None:
        app = self.status_app
        self.render_page(
            "status.html",
            clusters=app.clusters(),
            status_api=url_path_join(self.base_url, "api/ondemand/status"),
            refresh_interval=app.refresh_interval,
            status_static_url=self.static_url,
        )


default_handlers = [
    (r"/status/?", StatusPageHandler),
]
