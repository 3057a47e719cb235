"""JSON API of the status extension: ``GET {base_url}api/ondemand/status`` →
``{"status": "ok", "refresh_interval": s, "clusters": [cluster, ...]}``, one entry per visible
cluster (the fields are in docs/status.md). A cluster whose scheduler cannot be asked has
``"scheduler": "unreachable"`` and Slurm's words in ``error``; the reply is still 200."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from jupyter_server.auth.decorator import authorized
from tornado import web

from ondemand_dashboard.api import PortalAPIHandler

if TYPE_CHECKING:
    from .app import StatusExtensionApp


class ClusterStatusHandler(PortalAPIHandler):
    """Every cluster's partitions: nodes, CPUs, GPUs and jobs (shared, cached answers)."""

    @property
    def status_app(self) -> StatusExtensionApp:
        return self.settings["ondemand_status"]  # type: ignore[no-any-return]

    @web.authenticated
    @authorized
    async def get(self) -> None:
        app = self.status_app
        clusters = await asyncio.gather(*(app.cluster_status(c) for c in app.clusters()))
        self.set_header("Cache-Control", "no-store")
        self.finish(
            {"status": "ok", "refresh_interval": app.refresh_interval, "clusters": list(clusters)}
        )


default_handlers = [
    (r"/api/ondemand/status", ClusterStatusHandler),
]
