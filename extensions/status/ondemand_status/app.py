"""System status per cluster and partition, and quota warnings.

The page (:mod:`.handlers`) and its JSON (:mod:`.api`) show what every Slurm cluster's
partitions hold, from one ``sinfo`` and one ``squeue`` per ``status_interval`` per cluster
(:mod:`.load`). The dashboard asks this extension, when it runs, for its status widget and for
the user's quota and balance warnings (:meth:`StatusExtensionApp.quota_warnings`), read from
Open OnDemand's JSON files (:mod:`.quotasources`).
"""

from __future__ import annotations

import grp
import os
import pwd
from typing import Any

from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Float, List, TraitError, Unicode, validate

from ondemand_dashboard.portalapp import PortalExtensionApp
from ondemand_hub.site.clusters import Cluster
from ondemand_hub.site.quotas import (
    DEFAULT_BALANCE_THRESHOLD,
    DEFAULT_QUOTA_THRESHOLD,
    QuotaWarning,
    balance_warnings,
    parse_balance_file,
    parse_quota_file,
    quota_warnings,
    quotas_for,
)

from . import api, handlers
from .load import LoadCache, make_load_query
from .paths import STATIC_DIR, TEMPLATES_DIR
from .quotasources import QuotaSources


class StatusExtensionApp(PortalExtensionApp):
    """System status per cluster and partition, and quota warnings."""

    name = "ondemand_status"
    extension_url = "/status/"
    package_templates_dir = TEMPLATES_DIR
    package_static_dir = STATIC_DIR

    status_interval = Float(
        30.0,
        help="""Seconds one sinfo and squeue answer per cluster is reused.

        However many status pages and dashboards are open, each cluster is asked at most once
        per interval. Default 30 s: partitions change slowly next to a page being read; e.g. 60
        on a very busy controller.
        """,
    ).tag(config=True)

    refresh_interval = Float(
        30.0,
        help="""Seconds between refreshes of the status page and the dashboard widget.

        Not while the tab is hidden. Default 30 s, the same as ``status_interval`` (refreshing
        faster would show the same answer); e.g. 60.
        """,
    ).tag(config=True)

    quota_paths = List(
        Unicode(),
        help="""Disk quota files in Open OnDemand's JSON format (version 1): paths or
        ``http(s)://`` URLs.

        ``%{user}`` is replaced by the user name, as in OOD's ``OOD_QUOTA_PATH``; the dashboard
        warns about the user's own entries (and ``group`` entries of their groups) at or above
        ``quota_threshold``. Default none (no warnings), e.g.
        ``["/srv/quota/home.json", "https://quota.example.edu/%{user}.json"]``. See
        docs/status.md.
        """,
    ).tag(config=True)

    quota_threshold = Float(
        DEFAULT_QUOTA_THRESHOLD,
        help="""Fraction of a quota's limit (blocks or files) from which the dashboard warns.

        Between 0 and 1; the default 0.95 is OOD's ``OOD_QUOTA_THRESHOLD``, e.g. 0.8.
        """,
    ).tag(config=True)

    balance_paths = List(
        Unicode(),
        help="""Allocation balance files in Open OnDemand's JSON format (version 1): paths or
        ``http(s)://`` URLs, ``%{user}`` replaced as in ``quota_paths``.

        Default none, e.g. ``["/srv/balances.json"]`` (OOD's ``OOD_BALANCE_PATH``).
        """,
    ).tag(config=True)

    balance_threshold = Float(
        DEFAULT_BALANCE_THRESHOLD,
        help="""The dashboard warns about a balance below this value (in the file's unit).

        The default 0 is OOD's ``OOD_BALANCE_THRESHOLD``: only an overdrawn balance, e.g. 1000.
        """,
    ).tag(config=True)

    quota_url_timeout = Float(
        2.0,
        help="""Seconds a quota or balance URL may take to answer.

        Short, so a slow quota server delays at most the first dashboard load after the PUN
        starts (later loads use the last answer while a new one is fetched), e.g. 5.
        """,
    ).tag(config=True)

    quota_url_interval = Float(
        300.0,
        help="""Seconds one answer of a quota or balance URL is reused.

        Default 5 minutes, how often OOD recommends regenerating quota files, e.g. 3600 for a
        daily balance file.
        """,
    ).tag(config=True)

    @validate("quota_threshold")
    def _validate_quota_threshold(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not 0 <= value <= 1:
            raise TraitError(
                f"StatusExtensionApp.quota_threshold: expected a fraction between 0 and 1 "
                f"(0.95 = 95%), got {proposal['value']!r}"
            )
        return value

    @validate("status_interval", "refresh_interval", "command_timeout", "quota_url_timeout")
    def _validate_positive(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if value <= 0:
            raise TraitError(
                f"StatusExtensionApp.{proposal['trait'].name}: expected seconds > 0, "
                f"got {proposal['value']!r}"
            )
        return value

    def initialize_settings(self) -> None:
        self._load_caches: dict[Cluster, LoadCache] = {}
        self.quota_sources = QuotaSources(
            lambda data, source: parse_quota_file(data, source),
            self.quota_url_timeout,
            self.quota_url_interval,
        )
        self.balance_sources = QuotaSources(
            lambda data, source: parse_balance_file(data, source),
            self.quota_url_timeout,
            self.quota_url_interval,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers.default_handlers)
        self.handlers.extend(api.default_handlers)

    # -- clusters ----------------------------------------------------------------------------

    def load_cache(self, cluster: Cluster) -> LoadCache:
        """The shared sinfo + squeue answer of a Slurm cluster."""
        cache = self._load_caches.get(cluster)
        if cache is None:
            query = make_load_query(self.slurm_commands(cluster), self.command_timeout)
            cache = self._load_caches[cluster] = LoadCache(query, self.status_interval)
        return cache

    async def cluster_status(self, cluster: Cluster) -> dict[str, Any]:
        """What the status API says about one cluster (docs/status.md)."""
        model: dict[str, Any] = {"id": cluster.id, "title": cluster.title}
        if cluster.adapter != "slurm":
            return {
                **model,
                "adapter": cluster.adapter,
                "scheduler": None,
                "error": None,
                "updated": None,
                "partitions": [],
                "totals": {},
            }
        cache = self.load_cache(cluster)
        answer = await cache.get()
        if answer.error:
            self.log.warning("%s: sinfo/squeue failed: %s", cluster.id, answer.error)
        return {**model, "adapter": "slurm", **answer.to_json()}

    # -- the dashboard -----------------------------------------------------------------------

    def dashboard_widget(self, base_url: str) -> dict[str, Any]:
        """What the dashboard needs for its status card: the API, the page, the script."""
        settings = {
            "static_path": STATIC_DIR,
            "static_url_prefix": url_path_join(base_url, "static", self.name) + "/",
        }
        return {
            "api": url_path_join(base_url, "api/ondemand/status"),
            "page": url_path_join(base_url, "status/"),
            "script": web.StaticFileHandler.make_static_url(settings, "status-widget.js"),
            "refresh": self.refresh_interval,
        }

    @staticmethod
    def unix_user_and_groups() -> tuple[str, list[str]]:
        """The account this PUN runs as (the name quota files use) and its groups' names."""
        names = []
        for gid in sorted({os.getgid(), *os.getgroups()}):
            try:
                names.append(grp.getgrgid(gid).gr_name)
            except KeyError:
                continue
        return pwd.getpwuid(os.getuid()).pw_name, names

    async def quota_warnings(self) -> list[QuotaWarning]:
        """The user's quota and balance warnings; bad sources are logged and skipped."""
        user, groups = self.unix_user_and_groups()
        quotas, errors = await self.quota_sources.load(self.quota_paths, user)
        balances, balance_errors = await self.balance_sources.load(self.balance_paths, user)
        for error in errors + balance_errors:
            self.log.warning("Ignoring quota source %s", error)
        return quota_warnings(
            quotas_for(quotas, user, groups), self.quota_threshold
        ) + balance_warnings(balances, user, self.balance_threshold)
