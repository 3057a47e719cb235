"""What a cluster's partitions hold right now: one ``sinfo`` and one ``squeue`` per interval.

The PUN runs as the user, so it asks Slurm itself (argv only). However many status pages and
dashboards the user has open, :class:`LoadCache` runs the two commands at most once per
``interval`` per cluster: the first caller after the interval starts the query, callers that
arrive while it runs wait for that same query, the rest get the stored answer. A failed query
(controller down, command missing, timed out) is stored too, for the same interval, so a dead
controller is not asked again by every refresh (each attempt takes Slurm ~9 s to give up).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ondemand_hub.scheduler.slurm import (
    NodeState,
    PartitionLoad,
    SlurmCommands,
    count_jobs,
    parse_nodes,
    partition_loads,
    run,
)
from ondemand_hub.scheduler.status import SchedulerUnavailable


@dataclass(frozen=True)
class ClusterLoad:
    """One answer about a cluster: its partitions and totals, or why there is none."""

    partitions: list[PartitionLoad] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    error: str | None = None  # Slurm's words when it could not be asked
    updated: str = ""  # when the answer was fetched (ISO 8601, UTC)

    def to_json(self) -> dict[str, Any]:
        return {
            "scheduler": "unreachable" if self.error else "ok",
            "error": self.error,
            "updated": self.updated,
            "partitions": [asdict(p) for p in self.partitions],
            "totals": self.totals,
        }


def cluster_totals(nodes: list[NodeState], squeue_text: str) -> dict[str, int]:
    """Totals over distinct nodes (a node in two partitions counts once) and distinct jobs
    (a job pending in two partitions counts once)."""
    by_name: dict[str, NodeState] = {}
    down: set[str] = set()
    for node in nodes:
        by_name.setdefault(node.name, node)
        if node.down:
            down.add(node.name)
    states = [line.rsplit("|", 1)[-1].strip() for line in squeue_text.splitlines()]
    return {
        "nodes_up": len(by_name) - len(down),
        "nodes_down": len(down),
        "cpus_used": sum(n.cpus_alloc for n in by_name.values()),
        "cpus_free": sum(n.cpus_idle for name, n in by_name.items() if name not in down),
        "cpus_total": sum(n.cpus_total for n in by_name.values()),
        "gpus_used": sum(n.gpus_used for n in by_name.values()),
        "gpus_total": sum(n.gpus_total for n in by_name.values()),
        "jobs_running": states.count("RUNNING"),
        "jobs_pending": states.count("PENDING"),
    }


Query = Callable[[], Awaitable[ClusterLoad]]


def make_load_query(commands: SlurmCommands, timeout: float) -> Query:
    """The query of a cluster's :class:`LoadCache`: ``sinfo -N`` and ``squeue -t PD,R`` side
    by side; either failing makes the whole answer "unreachable" with Slurm's last words."""

    async def query() -> ClusterLoad:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        env = commands.env()
        try:
            sinfo, squeue = await asyncio.gather(
                run(commands.sinfo_nodes(), env, timeout=timeout),
                run(commands.squeue_counts(), env, timeout=timeout),
            )
        except SchedulerUnavailable as e:
            return ClusterLoad(error=str(e) or "the scheduler did not answer", updated=now)
        except OSError as e:  # the command is missing or not executable
            return ClusterLoad(error=f"cannot run Slurm's commands: {e.strerror}", updated=now)
        nodes = parse_nodes(sinfo)
        return ClusterLoad(
            partitions=partition_loads(nodes, count_jobs(squeue)),
            totals=cluster_totals(nodes, squeue),
            updated=now,
        )

    return query


class LoadCache:
    """Shares one :class:`ClusterLoad` query per ``interval`` seconds among all callers."""

    def __init__(
        self, query: Query, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.query = query
        self.interval = interval
        self.clock = clock
        self.calls = 0
        self.answer: ClusterLoad | None = None
        self.fetched_at: float | None = None
        self._inflight: asyncio.Future[ClusterLoad] | None = None

    def fresh(self) -> bool:
        return self.fetched_at is not None and self.clock() - self.fetched_at < self.interval

    async def get(self) -> ClusterLoad:
        """The stored answer while fresh, else a new one (joining a query already running)."""
        if self._inflight is None and self.answer is not None and self.fresh():
            return self.answer
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._query())
        inflight = self._inflight
        return await asyncio.shield(inflight)

    async def _query(self) -> ClusterLoad:
        self.calls += 1
        try:
            answer = await self.query()
            self.answer, self.fetched_at = answer, self.clock()
            return answer
        finally:
            self._inflight = None
