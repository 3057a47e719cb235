"""The Slurm job adapter (``adapter: slurm``): a session is a batch job.

* **validate**: the form against the cluster's partitions (one ``sinfo`` per cluster and
  ``partitions_interval``, shared by every session); unknown fields are refused before Slurm
  is asked.
* **submit**: ``sbatch --parsable`` as the user, the script on stdin, every resource request on
  the argv (:func:`~ondemand_hub.scheduler.batch.make_sbatch_argv`), and exactly the hub's
  ``JUPYTERHUB_*`` variables exported from sbatch's environment (never a file or an argument).
  An sbatch that times out or loses the controller's answer may have been accepted anyway
  (OOD #3198): the job of that name submitted since is looked up and adopted, never submitted
  twice.
* **status**: one ``squeue -t all`` per cluster and ``status_interval`` for every session
  (:class:`~ondemand_hub.scheduler.status.StatusCache`); an error is "unknown", never "gone".
* **cancel**: ``scancel`` as the user, then wait (``stop_wait``) until squeue shows it ended.
* **how_it_ended**: ``scontrol show job`` (squeue has no exit code), else squeue's state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from ..site.apps import FormError, validate_options
from .adapter import (
    SUBMITTING,
    CommandRefused,
    JobAdapter,
    Submission,
    SubmissionRefused,
    SubmitFailed,
    is_gone,
)
from .batch import BatchScriptError, make_sbatch_argv
from .slurm import (
    Partition,
    SlurmCommands,
    job_ending,
    parse_partitions,
    parse_sbatch,
    parse_scontrol_job,
    parse_squeue,
    plain_reason,
    queue_position,
)
from .slurm import run as run_command
from .status import JobStatus, SchedulerUnavailable, StatusCache

#: Where a Slurm job's server listens: the hub reaches it on the compute node.
SLURM_IP = "0.0.0.0"
#: Seconds the controller's clock may be behind the hub's when a timed-out submission is
#: looked up by its submit time.
SUBMIT_CLOCK_SKEW = 30
#: Partitions per cluster id: (monotonic time of the sinfo, its answer), for every session.
PARTITIONS: dict[str, tuple[float, list[Partition]]] = {}


def job_name_of(sbatch_argv: list[str]) -> str:
    """The ``--job-name=`` of an sbatch argv."""
    for arg in sbatch_argv:
        if arg.startswith("--job-name="):
            return arg.split("=", 1)[1]
    raise ValueError("sbatch argv without --job-name")


def queued_message(job_id: str, status: JobStatus, position: int | None) -> str:
    """What the progress page says about a pending job: where, its place in line, why it
    waits (in plain words) and when Slurm expects it to start."""
    message = f"Job {job_id} is queued in {status.partition or 'the queue'}"
    if position == 1:
        message += ", next in line"
    elif position:
        message += f", number {position} in line"
    reason = plain_reason(status.reason)
    if reason:
        message += f": {reason}"
    message += "."
    if status.start_time:
        message += f" Expected start: {status.start_time.replace('T', ' ')}."
    return message


def submit_epoch(text: str) -> float | None:
    """squeue's ``%V`` (submit time, ``2026-11-23T00:27:49`` in local time) as epoch seconds;
    None when it is not such a time."""
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def make_sbatch_submission(
    commands: SlurmCommands,
    script: str,
    values: Mapping[str, Any],
    context: Any,
    env: Mapping[str, str],
) -> Submission:
    """The sbatch of a session: the script on stdin, Slurm's environment plus exactly the
    hub's variables, exported by name (``--export=A,B``) instead of ``--export=NONE``."""
    try:
        argv = make_sbatch_argv(commands, values, context)
    except BatchScriptError as e:
        raise SubmissionRefused(str(e)) from None
    argv = ["--export=" + ",".join(sorted(env)) if a == "--export=NONE" else a for a in argv]
    return Submission(
        argv=argv,
        env={**commands.env(), **env},
        stdin=script.encode(),
        job_name=job_name_of(argv),
    )


def is_definitive(error: str) -> bool:
    """Whether an sbatch error means the job was surely not accepted (no lookup needed)."""
    message = error.lower()
    return "submission failed" in message and "timed out" not in message


class SlurmAdapter(JobAdapter):
    """Sessions as Slurm batch jobs on ``cluster``'s compute nodes."""

    name = "slurm"
    listen_ip = SLURM_IP

    @classmethod
    def owns(cls, job_id: str) -> bool:
        return job_id.isdigit()

    @property
    def commands(self) -> SlurmCommands:
        c = self.cluster
        return SlurmCommands(bin_dir=c.bin_dir, conf=c.conf, cluster=c.slurm_cluster)

    async def run(self, argv: list[str]) -> str:
        """A read-only Slurm command, as the hub."""
        return await run_command(argv, self.commands.env(), timeout=self.settings.command_timeout)

    # -- the form --------------------------------------------------------------------------

    async def partitions(self) -> list[Partition]:
        cached = PARTITIONS.get(self.cluster.id)
        if cached and time.monotonic() - cached[0] < self.settings.partitions_interval:
            return cached[1]
        parts = parse_partitions(await self.run(self.commands.sinfo_partitions()))
        PARTITIONS[self.cluster.id] = (time.monotonic(), parts)
        return parts

    async def validate(self, app: Any, options: Mapping[str, Any]) -> dict[str, Any]:
        # Unknown fields are refused before anything asks the scheduler.
        try:
            validate_options(app, {k: v for k, v in options.items() if k != "bc_queue"}, [])
        except FormError as e:
            if e.field not in ("bc_queue", "bc_num_gpus", "bc_num_nodes"):
                raise
        return validate_options(app, dict(options), await self.partitions())

    # -- submit ----------------------------------------------------------------------------

    def make_submission(
        self, script: str, values: Mapping[str, Any], context: Any, env: Mapping[str, str]
    ) -> Submission:
        return make_sbatch_submission(self.commands, script, values, context, env)

    async def submit(self, submission: Submission) -> str:
        submitted_at = time.time()
        timeout = self.settings.command_timeout
        try:
            out = await self.run_as_user(
                submission.argv, submission.env, timeout, stdin=submission.stdin
            )
            return parse_sbatch(out)
        except CommandRefused as e:
            raise SubmitFailed(f"The job could not be submitted: {e}") from None
        except SchedulerUnavailable as e:
            # sbatch may have timed out or lost the controller's answer *after* the job was
            # accepted (OOD #3198): adopt that job rather than lose it or submit it twice.
            job_id = ""
            if not is_definitive(str(e)):
                job_id = await self.find_submitted(submission.job_name, since=submitted_at)
            if job_id:
                self.log.warning(
                    "%s: sbatch failed (%s) but job %s was submitted: adopting it",
                    self.subject,
                    e,
                    job_id,
                )
                return job_id
            raise SubmitFailed(f"The job could not be submitted: {e}") from None

    async def find_submitted(self, job_name: str, since: float | None = None) -> str:
        """The newest queued or running job of this user called ``job_name`` submitted at or
        after ``since`` (epoch seconds, less ``SUBMIT_CLOCK_SKEW`` for the controller's clock),
        or "" (none, or the scheduler does not answer). An older job with the same name (a
        server name used again through the REST API) is never adopted. Asked
        ``submit_lookups`` times, a second apart: a job accepted at the very end of a timed-out
        sbatch may be listed a moment later."""
        argv = self.commands.argv(
            "squeue", "-h", "-o", "%i|%V", "-t", "PD,CF,R", "-u", self.user, "-n", job_name
        )
        for attempt in range(self.settings.submit_lookups):
            if attempt:
                await asyncio.sleep(1)
            try:
                out = await self.run(argv)
            except SchedulerUnavailable as e:
                self.log.warning("%s: squeue -n %s: %s", self.subject, job_name, e)
                continue
            ids = []
            for line in out.splitlines():
                job_id, _, submitted = line.strip().partition("|")
                if not job_id.isdigit():
                    continue
                when = submit_epoch(submitted)
                if since is not None and when is not None and when < since - SUBMIT_CLOCK_SKEW:
                    self.log.info("%s: not adopting older job %s", self.subject, job_id)
                    continue
                ids.append(job_id)
            if ids:
                return max(ids, key=int)
        return ""

    # -- state -----------------------------------------------------------------------------

    def status_cache(self) -> StatusCache:
        """The cluster's one squeue answer per ``status_interval``, for every session."""

        def make() -> StatusCache:
            argv = self.commands.squeue_all()
            run = self.run

            async def query():
                return parse_squeue(await run(argv))

            return StatusCache(query, self.settings.status_interval)

        return self.shared_cache(make)

    async def status(self, job_id: str, max_age: float | None = None) -> JobStatus | None:
        return await self.status_cache().status(job_id, max_age=max_age)

    async def refresh(self) -> None:
        await self.status_cache().refresh(force=True)

    async def cancel(self, job_id: str, wait: bool = True) -> None:
        try:
            await self.run_as_user(
                self.commands.scancel(job_id), self.commands.env(), self.settings.command_timeout
            )
        except (SchedulerUnavailable, CommandRefused) as e:
            self.log.warning("%s: scancel %s: %s", self.subject, job_id, e)
        if not wait:
            return
        cache = self.status_cache()
        deadline = time.monotonic() + self.settings.stop_wait
        while time.monotonic() < deadline:
            await cache.refresh(force=True)
            status = await cache.status(job_id)
            if status is not None and is_gone(status):
                return
            await asyncio.sleep(0.5)
        self.log.warning("%s: job %s still listed", self.subject, job_id)

    # -- words -----------------------------------------------------------------------------

    def describe(self, job_id: str) -> str:
        return f"The job {job_id}"

    async def how_it_ended(self, job_id: str, status: JobStatus) -> str:
        """ "failed, exit code 3", "ended: it ran out of time"...: from ``scontrol show job``
        (squeue has no exit code); squeue's state when scontrol does not know the job any more."""
        try:
            fields = parse_scontrol_job(await self.run(self.commands.scontrol_job(job_id)))
        except (SchedulerUnavailable, ValueError):
            fields = {}
        if fields.get("JobState"):
            return job_ending(fields["JobState"], fields.get("ExitCode", ""))
        if status.state == "NOTFOUND":
            return "it is gone from the queue"
        return job_ending(status.state)

    async def progress(self, job_id: str, phase: str) -> dict:
        if not job_id:
            return dict(SUBMITTING)
        if phase == "waiting":
            return {"progress": 80, "message": "The job runs; waiting for the server to answer"}
        cache = self.status_cache()
        status = await cache.status(job_id)
        if status is None:
            return {"progress": 20, "message": "Submitted; the scheduler is not answering"}
        if status.is_pending:
            position = queue_position(cache.jobs, job_id)
            return {"progress": 30, "message": queued_message(job_id, status, position)}
        if status.is_running:
            return {"progress": 60, "message": f"Job {job_id} is starting on {status.node}"}
        return {"progress": 90, "message": f"Job {job_id} ended ({status.state.lower()})"}
