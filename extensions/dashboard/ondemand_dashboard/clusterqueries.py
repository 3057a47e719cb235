"""What Slurm says about a cluster, asked once for every page extension of the PUN.

The Jobs, Sessions and Status pages each used to keep their own ``sinfo`` and ``sacct`` answers,
with settings that had drifted (one sinfo waited 30 s where the others waited 20, one reused its
partitions for six job intervals, another for ``partitions_interval``). :class:`ClusterQueries`
is the one place: one per PUN, shared by every :class:`~ondemand_dashboard.portalapp.
PortalExtensionApp`, which passes its intervals and timeout (the portal extensions' one set of
traits, ``c.PortalExtensionApp.partitions_interval`` … for all of them) with each question.

Every answer is keyed by the :class:`~ondemand_hub.site.clusters.Cluster` itself, so a changed
clusters.d file is a new cluster. Commands run as the PUN's user; a failed command is logged
and answered as "nothing to offer", never raised into a page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from ondemand_hub.scheduler.slurm import (
    Partition,
    SlurmCommands,
    parse_accounts,
    parse_partitions,
    parse_sacct,
    run,
)
from ondemand_hub.scheduler.status import SchedulerUnavailable
from ondemand_hub.site.clusters import Cluster


@dataclass(frozen=True)
class QuerySettings:
    """The portal extensions' intervals (seconds) and command timeout."""

    partitions_interval: float = 30.0
    accounts_interval: float = 300.0
    history_interval: float = 60.0
    command_timeout: float = 20.0


@dataclass(frozen=True)
class History:
    """The user's finished jobs from sacct (``jobs`` by id, parse_sacct's fields), or why
    there are none to show (``note``: no slurmdbd, sacct missing …)."""

    available: bool
    jobs: dict[str, dict[str, str]]
    note: str = ""


def slurm_commands(cluster: Cluster) -> SlurmCommands:
    return SlurmCommands(bin_dir=cluster.bin_dir, conf=cluster.conf, cluster=cluster.slurm_cluster)


class ClusterQueries:
    """Partitions, accounts and job history per cluster, shared by the PUN's pages."""

    def __init__(self, log: logging.Logger | None = None):
        self.log = log or logging.getLogger(__name__)
        #: (cluster, what) → (monotonic time until which it holds, answer)
        self._answers: dict[tuple[Cluster, str], tuple[float, Any]] = {}
        self._locks: dict[tuple[Cluster, str], asyncio.Lock] = {}
        self.calls = 0  # commands run, for tests

    def _cached(self, key: tuple[Cluster, str]) -> tuple[bool, Any]:
        held = self._answers.get(key)
        if held and time.monotonic() < held[0]:
            return True, held[1]
        return False, None

    async def _run(self, cluster: Cluster, argv: list[str], settings: QuerySettings) -> str:
        self.calls += 1
        commands = slurm_commands(cluster)
        return await run(argv, commands.env(), timeout=settings.command_timeout)

    async def partitions(self, cluster: Cluster, settings: QuerySettings) -> list[Partition] | None:
        """The cluster's partitions ([] for a cluster without a scheduler), None when sinfo
        failed (asked again after a sixth of ``partitions_interval``)."""
        if cluster.adapter != "slurm":
            return []
        key = (cluster, "partitions")
        async with self._locks.setdefault(key, asyncio.Lock()):
            hit, parts = self._cached(key)
            if hit:
                return parts
            interval = settings.partitions_interval
            try:
                argv = slurm_commands(cluster).sinfo_partitions()
                text = await self._run(cluster, argv, settings)
                parts, ttl = parse_partitions(text), interval
            except (SchedulerUnavailable, OSError) as e:
                self.log.warning("sinfo on %s failed: %s", cluster.id, e)
                parts, ttl = None, interval / 6
            self._answers[key] = (time.monotonic() + ttl, parts)
            return parts

    async def accounts(
        self, cluster: Cluster, user: str, settings: QuerySettings
    ) -> list[str] | None:
        """``user``'s Slurm accounts on ``cluster``; None when there is nothing to offer (no
        scheduler, no accounting: sacctmgr fails without slurmdbd, or no association)."""
        if cluster.adapter != "slurm":
            return None
        key = (cluster, f"accounts:{user}")
        async with self._locks.setdefault(key, asyncio.Lock()):
            hit, accounts = self._cached(key)
            if hit:
                return accounts
            try:
                argv = slurm_commands(cluster).sacctmgr_accounts(user)
                accounts = parse_accounts(await self._run(cluster, argv, settings)) or None
            except (SchedulerUnavailable, OSError, ValueError) as e:
                self.log.info("sacctmgr on %s: no accounts to offer: %s", cluster.id, e)
                accounts = None
            self._answers[key] = (time.monotonic() + settings.accounts_interval, accounts)
            return accounts

    async def history(self, cluster: Cluster, user: str, settings: QuerySettings) -> History:
        """``user``'s jobs of the last 7 days from sacct, reused ``history_interval``; where
        sacct fails (no slurmdbd) it is not asked again for five times as long. Tabs asking
        together wait for one sacct."""
        if cluster.adapter != "slurm":
            return History(False, {}, "no scheduler")
        key = (cluster, f"history:{user}")
        async with self._locks.setdefault(key, asyncio.Lock()):
            hit, answer = self._cached(key)
            if hit:
                return answer
            interval = settings.history_interval
            try:
                argv = slurm_commands(cluster).sacct_jobs(user)
                text = await self._run(cluster, argv, settings)
                answer, ttl = History(True, parse_sacct(text)), interval
            except (SchedulerUnavailable, OSError, ValueError) as e:
                self.log.info("sacct on %s: no job history: %s", cluster.id, e)
                note = getattr(e, "strerror", None) or str(e)
                answer, ttl = History(False, {}, note), interval * 5
            self._answers[key] = (time.monotonic() + ttl, answer)
            return answer
