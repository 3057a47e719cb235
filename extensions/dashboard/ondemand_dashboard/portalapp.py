"""The base of every portal page extension (sessions, jobs, shell, status).

Each renders its pages in the dashboard's layout (its own templates first, then the
dashboard's ``base.html``), serves its own static files, and reads the site's clusters from the
same clusters.d as the hub; the Slurm commands of a cluster run as the PUN's user.
"""

from __future__ import annotations

import os
import pwd

from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from traitlets import Unicode, default

from ondemand_hub.scheduler.slurm import SlurmCommands
from ondemand_hub.site.clusters import Cluster, default_clusters_dir, load_clusters

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
        return SlurmCommands(
            bin_dir=cluster.bin_dir, conf=cluster.conf, cluster=cluster.slurm_cluster
        )

    @staticmethod
    def unix_user() -> str:
        """The account this PUN runs as: the user Slurm knows (the hub's name may be mapped)."""
        return pwd.getpwuid(os.getuid()).pw_name
