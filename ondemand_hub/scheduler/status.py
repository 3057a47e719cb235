"""One scheduler query per interval for every session together.

batchspawner runs one ``squeue -j <id>`` per session per poll (200 sessions → 200 calls every
30 s, plus one every 0.5 s per pending spawn). Here every ``poll()`` reads from a shared
:class:`StatusCache`: the first caller after the interval starts one query; callers arriving
while it runs wait for that same query; everyone else gets the cached answer.

A failed or timed-out query never means "job gone": callers get ``None`` (unknown) for every
job, and keep their sessions (batchspawner #315).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class JobStatus:
    """What the scheduler says about one job right now."""

    job_id: str
    state: str  # Slurm's long state name: PENDING, RUNNING, COMPLETING, ...
    reason: str = ""  # why it waits (PENDING) or why it ended
    node: str = ""  # where it runs: Slurm's node list (%N), e.g. "n[1-2]" for two nodes
    time_left: str = ""
    start_time: str = ""  # expected start (PENDING) or actual start
    user: str = ""
    partition: str = ""
    name: str = ""
    priority: int = 0  # Slurm's priority (%Q); higher runs first, 0 = held
    exit_code: str = ""  # "<code>:<signal>" of an ended job, where known (sacct, scontrol)
    batch_host: str = ""  # the node running the batch script (%B): where the app's server is

    @property
    def is_pending(self) -> bool:
        return self.state in ("PENDING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED")

    @property
    def is_running(self) -> bool:
        return self.state in ("RUNNING", "COMPLETING", "STAGE_OUT")


class SchedulerUnavailable(Exception):
    """The scheduler could not be asked (command failed, timed out, controller down)."""


Query = Callable[[], Awaitable[dict[str, JobStatus]]]


class StatusCache:
    """Shares one scheduler query per ``interval`` seconds among all callers.

    ``query`` returns every job the portal cares about, keyed by job id, or raises
    :class:`SchedulerUnavailable`.
    """

    def __init__(
        self, query: Query, interval: float = 5.0, clock: Callable[[], float] = time.monotonic
    ):
        self.query = query
        self.interval = interval
        self.clock = clock
        self.jobs: dict[str, JobStatus] = {}
        self.fetched_at: float | None = None
        self.error: str | None = None
        self.calls = 0
        self._inflight: asyncio.Future | None = None

    def fresh(self, max_age: float | None = None) -> bool:
        limit = self.interval if max_age is None else min(self.interval, max_age)
        return self.fetched_at is not None and self.clock() - self.fetched_at < limit

    def invalidate(self) -> None:
        """Make the next caller query again (after an action that changes jobs, e.g. scancel)."""
        self.fetched_at = None

    async def refresh(self, force: bool = False, max_age: float | None = None) -> None:
        """Query the scheduler unless the cache is fresh (younger than ``interval``, or than
        ``max_age`` for a caller in a hurry); join a query already running."""
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
            return
        if self.fresh(max_age) and not force:
            return
        self._inflight = asyncio.ensure_future(self._query())
        try:
            await asyncio.shield(self._inflight)
        finally:
            self._inflight = None

    async def _query(self) -> None:
        self.calls += 1
        try:
            jobs = await self.query()
        except SchedulerUnavailable as e:
            self.error = str(e) or "the scheduler did not answer"
            self.jobs = {}
        else:
            self.error, self.jobs = None, jobs
        self.fetched_at = self.clock()

    async def status(self, job_id: str, max_age: float | None = None) -> JobStatus | None:
        """The job's status; ``None`` while the scheduler is unavailable (unknown, not gone).

        A job the scheduler no longer lists comes back with state ``NOTFOUND``. Spawns waiting
        for their job pass a short ``max_age``: still one query for all of them together.
        """
        await self.refresh(max_age=max_age)
        if self.error is not None:
            return None
        return self.jobs.get(job_id) or JobStatus(job_id=job_id, state="NOTFOUND")
