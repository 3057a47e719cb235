"""What the scheduler says about each session's job, for the My sessions cards.

The PUN runs as the user, so it asks Slurm itself (argv only, :mod:`ondemand_hub.scheduler.slurm`):
one query per cluster per interval, shared by every card of every open tab through a
:class:`~ondemand_hub.scheduler.status.StatusCache`. The query is ``squeue -u <me> -t all``
(only the user's jobs: light on slurmctld however many jobs it holds); while one of the user's
sessions is queued, also ``squeue -t PD -p <its partitions>`` (the others' pending jobs, which
decide its place in the queue) and ``squeue --start -u <me>``. A session's job is found by its
name, ``ondemand-<app>-<session>`` (``make_sbatch_argv``); names are never reused.

A failed query means "scheduler unreachable" on the card, never "ended".
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ondemand_hub.scheduler.slurm import (
    SlurmCommands,
    format_time_left,
    job_ending,
    parse_duration,
    parse_squeue,
    parse_squeue_start,
    plain_reason,
    plain_state,
    queue_position,
    run,
)
from ondemand_hub.scheduler.status import JobStatus, Query, SchedulerUnavailable


def job_name(app_id: str, session: str) -> str:
    """The Slurm job name the session spawner gives a session's job."""
    return f"ondemand-{app_id}-{session}"


def make_job_query(commands: SlurmCommands, user: str, timeout: float) -> Query:
    """The query of a cluster's StatusCache: ``user``'s jobs; while one of their sessions is
    queued, also every user's pending jobs in its partitions (for its place in the queue) and
    the expected starts from ``squeue --start``."""

    async def query() -> dict[str, JobStatus]:
        env = commands.env()
        try:
            jobs = parse_squeue(await run(commands.squeue_user(user), env, timeout=timeout))
            queued = [
                j for j in jobs.values() if j.state == "PENDING" and j.name.startswith("ondemand-")
            ]
            if not queued:
                return jobs
            partitions = sorted({p for j in queued for p in j.partition.split(",") if p})
            argv = commands.squeue_pending(partitions)
            others = parse_squeue(await run(argv, env, timeout=timeout))
            starts = parse_squeue_start(
                await run(commands.squeue_start(user), env, timeout=timeout)
            )
        except OSError as e:  # squeue not found or not runnable
            raise SchedulerUnavailable(f"cannot run squeue: {e.strerror or e}") from None
        except ValueError as e:  # a partition name squeue_pending() refuses
            raise SchedulerUnavailable(str(e)) from None
        jobs = {**others, **jobs}
        for job in queued:
            start = starts.get(job.job_id, job.start_time)
            jobs[job.job_id] = dataclasses.replace(job, start_time=start)
        return jobs

    return query


def history_jobs(sacct: dict[str, dict[str, str]], user: str) -> dict[str, JobStatus]:
    """``parse_sacct``'s finished jobs (``sacct -u <user>``) as JobStatus, by job id."""
    return {
        job_id: JobStatus(
            job_id=job_id,
            state=job["State"],
            node=job["NodeList"],
            start_time=job["Start"],
            user=user,
            name=job["JobName"],
            exit_code=job["ExitCode"],
        )
        for job_id, job in sacct.items()
    }


def find_session_job(jobs: dict[str, JobStatus], name: str, user: str) -> JobStatus | None:
    """The user's job called ``name``: the newest queued or running one, else the newest one
    (ended jobs stay listed for Slurm's MinJobAge, 300 s by default)."""
    mine = [j for j in jobs.values() if j.name == name and j.user == user]
    live = [j for j in mine if j.is_pending or j.is_running]
    candidates = live or mine
    return max(candidates, key=lambda j: _id_number(j.job_id)) if candidates else None


def _id_number(job_id: str) -> int:
    digits = job_id.split("_", 1)[0]
    return int(digits) if digits.isdigit() else 0


def local_iso(slurm_time: str) -> str | None:
    """Slurm's local time (``2026-11-23T00:55:56``, the PUN's time zone, as the PUN runs on the
    portal host next to slurmctld's clients) as ISO 8601 with its offset, for the browser."""
    try:
        return datetime.fromisoformat(slurm_time).astimezone().isoformat()
    except ValueError:
        return None


#: A session's job that ran, was requeued by Slurm and then cancelled (the hub ends a session
#: whose job is queued again: its server went with its node).
REQUEUED_TEXT = (
    "ended: Slurm requeued it (its node stopped responding, or it was preempted or requeued)"
)


def was_requeued(job: JobStatus) -> bool:
    """Whether ``job`` was requeued and then cancelled: squeue keeps the reason Slurm's requeue
    gave it (``BeginTime``) and no node. The portal never submits with ``--begin``."""
    return job.state == "CANCELLED" and job.reason == "BeginTime" and not job.node


def state_text(job: JobStatus) -> str:
    """The job's state in words for its card."""
    if was_requeued(job):
        return REQUEUED_TEXT
    if job.exit_code:
        return job_ending(job.state, job.exit_code)
    return plain_state(job.state)


def job_summary(job: JobStatus, jobs: dict[str, JobStatus]) -> dict[str, Any]:
    """The ``job`` object of a card (docs/sessions.md, "My sessions")."""
    running, pending = job.is_running, job.state == "PENDING"
    return {
        "id": job.job_id,
        "state": job.state,
        "state_text": state_text(job),
        "partition": job.partition or None,
        "node": job.node or None,
        "time_left": (format_time_left(job.time_left) or None) if running else None,
        "time_left_seconds": parse_duration(job.time_left) if running else None,
        "queue_position": queue_position(jobs, job.job_id),
        "expected_start": local_iso(job.start_time) if pending else None,
        "reason": (job.reason or None) if pending else None,
        "reason_text": (plain_reason(job.reason) or None) if pending else None,
        # a job cancelled before it ran has a start time too (its end): only one that got a node
        "started": local_iso(job.start_time) if job.node and not pending else None,
    }
