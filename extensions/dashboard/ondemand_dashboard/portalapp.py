"""The base of every portal page extension (sessions, jobs, shell, status).

Each renders its pages in the dashboard's layout (its own templates first, then the
dashboard's ``base.html``), serves its own static files, and reads the site's clusters from the
same clusters.d as the hub; the Slurm commands of a cluster run as the PUN's user. What Slurm
says about a cluster (partitions, accounts, job history) comes from the PUN's one
:class:`~ondemand_dashboard.clusterqueries.ClusterQueries`, with the one set of interval and
timeout traits defined here.
"""

from __future__ import annotations

import os
import pwd

from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from traitlets import Float, Unicode, default

from ondemand_hub.scheduler.slurm import Partition, SlurmCommands
from ondemand_hub.site.clusters import Cluster, default_clusters_dir, load_clusters

from . import clusterqueries
from .clusterqueries import ClusterQueries, History, QuerySettings
from .paths import TEMPLATES_DIR as DASHBOARD_TEMPLATES_DIR


class PortalExtensionApp(ExtensionAppJinjaMixin, ExtensionApp):
    """A portal page extension: set ``name``, ``extension_url`` and the two package paths."""

    load_other_extensions = True
    #: The extension's own packaged templates and static files.
    package_templates_dir = ""
    package_static_dir = ""

    clusters_dir = Unicode(
        help="""The clusters.d directory: the clusters whose jobs, partitions and login hosts
        the portal's pages offer. Default ``$ONDEMAND_HUB_CLUSTERS_DIR`` or
        ``/etc/ondemand-hub/clusters.d``; it must be the hub's, e.g. ``/srv/portal/clusters.d``.
        """
    ).tag(config=True)

    job_status_interval = Float(
        5.0,
        help="""Seconds one squeue answer (Active jobs, the composer's job states, the My
        sessions cards) is reused. However many jobs and tabs, squeue runs at most once per
        interval per cluster (plus ``squeue --start`` while a session is queued); default 5 s,
        the pages' refresh; e.g. 15 on a very busy controller.""",
    ).tag(config=True)

    partitions_interval = Float(
        30.0,
        help="""Seconds one sinfo answer (the partitions a form offers) is reused; a failed
        sinfo is asked again after a sixth of it. Default 30 s, e.g. 300 where partitions
        rarely change.""",
    ).tag(config=True)

    accounts_interval = Float(
        300.0,
        help="""Seconds one sacctmgr answer (the accounts a form offers) is reused.

        Accounts change rarely; 5 minutes keeps sacctmgr (slurmdbd) out of every form view.
        """,
    ).tag(config=True)

    history_interval = Float(
        60.0,
        help="""Seconds one sacct answer (completed jobs, how ended sessions ended) is reused;
        where sacct fails (no slurmdbd) it is not asked again for five times as long. Default
        60 s, e.g. 300 on a busy slurmdbd.""",
    ).tag(config=True)

    command_timeout = Float(
        20.0,
        help="""Seconds one Slurm command (squeue, sinfo, sacct, sacctmgr, scontrol, scancel)
        may take. Slurm gives up on a dead controller after about 9 s; 20 s lets its own
        message be shown, e.g. 30 on a slow controller.""",
    ).tag(config=True)

    @default("clusters_dir")
    def _default_clusters_dir(self) -> str:
        return default_clusters_dir()

    @default("template_paths")
    def _default_template_paths(self) -> list[str]:
        return [self.package_templates_dir, DASHBOARD_TEMPLATES_DIR]

    @default("static_paths")
    def _default_static_paths(self) -> list[str]:
        return [self.package_static_dir]

    def all_clusters(self) -> list[Cluster]:
        """Every cluster of clusters.d, hidden ones too; broken files are logged and skipped."""
        clusters, errors = load_clusters(self.clusters_dir)
        for error in errors:
            self.log.warning("clusters.d: %s", error)
        return clusters

    def clusters(self) -> list[Cluster]:
        """The clusters the pages offer (not ``hidden``)."""
        return [c for c in self.all_clusters() if not c.hidden]

    def cluster(self, cluster_id: str | None) -> Cluster | None:
        """The offered cluster ``cluster_id``; the first one for None or ""."""
        clusters = self.clusters()
        if not cluster_id:
            return clusters[0] if clusters else None
        return next((c for c in clusters if c.id == cluster_id), None)

    @staticmethod
    def slurm_commands(cluster: Cluster) -> SlurmCommands:
        return clusterqueries.slurm_commands(cluster)

    # -- what Slurm says, shared by every page extension of the PUN ---------------------------

    @property
    def queries(self) -> ClusterQueries:
        """The PUN's one query service (made by the first extension that asks)."""
        server = self.serverapp
        service = getattr(server, "_ondemand_cluster_queries", None)
        if service is None:
            service = ClusterQueries(self.log)
            server._ondemand_cluster_queries = service
        return service

    def query_settings(self) -> QuerySettings:
        return QuerySettings(
            partitions_interval=self.partitions_interval,
            accounts_interval=self.accounts_interval,
            history_interval=self.history_interval,
            command_timeout=self.command_timeout,
        )

    async def partitions(self, cluster: Cluster) -> list[Partition] | None:
        """The cluster's partitions ([] without a scheduler), None when sinfo failed."""
        return await self.queries.partitions(cluster, self.query_settings())

    async def accounts(self, cluster: Cluster) -> list[str] | None:
        """The user's Slurm accounts on ``cluster``; None when there is nothing to offer."""
        return await self.queries.accounts(cluster, self.unix_user(), self.query_settings())

    async def slurm_history(self, cluster: Cluster) -> History:
        """The user's jobs of the last 7 days from sacct (see ClusterQueries.history)."""
        return await self.queries.history(cluster, self.unix_user(), self.query_settings())

    @staticmethod
    def unix_user() -> str:
        """The account this PUN runs as: the user Slurm knows (the hub's name may be mapped)."""
        return pwd.getpwuid(os.getuid()).pw_name
