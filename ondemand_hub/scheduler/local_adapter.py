"""The local job adapter (``adapter: local``): a session is a process tree of the user on the
portal host (docs/local-cluster.md; the process management is :mod:`.local`).

* **validate**: no partitions, accounts or GPUs (an empty ``bc_queue``, as a form sends it, is
  the same as none; a named partition or a GPU is refused).
* **submit**: ``python -I -m ondemand_hub.scheduler.local start`` as the user, the script and
  the hub's variables on stdin; the job id ``local:<pid>:<start time>`` on stdout. A session
  always has a walltime (``bc_num_hours``, else ``local_default_hours``).
* **status**: read from ``/proc`` at once (nothing to share or refresh).
* **cancel**: ``… local stop <job id>`` as the user (it waits for the tree itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..site.apps import validate_options
from . import local
from .adapter import CommandRefused, JobAdapter, Submission, SubmissionRefused, SubmitFailed
from .status import JobStatus, SchedulerUnavailable

#: Local jobs' states, read from /proc: one reader for the whole hub.
LOCAL_STATUS = local.LocalStatus()


def make_local_submission(
    python: str,
    script: str,
    values: Mapping[str, Any],
    session_dir: str,
    env: Mapping[str, str],
    grace: int,
    default_hours: int,
) -> Submission:
    """The ``start`` command of a local session and its input (script and hub variables)."""
    hours = values.get("bc_num_hours") or default_hours
    try:
        argv = local.make_start_argv(python, session_dir, int(hours) * 3600, grace)
        stdin = local.make_start_input(script, env)
    except local.LocalSessionError as e:
        raise SubmissionRefused(str(e)) from None
    return Submission(argv=argv, env={}, stdin=stdin)


class LocalAdapter(JobAdapter):
    """Sessions as processes of the user on the portal host."""

    name = "local"
    listen_ip = local.LOCAL_IP

    @classmethod
    def owns(cls, job_id: str) -> bool:
        return local.is_local_job(job_id)

    async def validate(self, app: Any, options: Mapping[str, Any]) -> dict[str, Any]:
        options = dict(options)
        if options.get("bc_queue") in (None, ""):
            options.pop("bc_queue", None)
        return validate_options(app, options, [])

    def make_submission(
        self, script: str, values: Mapping[str, Any], context: Any, env: Mapping[str, str]
    ) -> Submission:
        s = self.settings
        return make_local_submission(
            s.python_command,
            script,
            values,
            context.session_dir,
            env,
            s.local_grace,
            s.local_default_hours,
        )

    async def submit(self, submission: Submission) -> str:
        try:
            out = await self.run_as_user(
                submission.argv,
                submission.env,
                self.settings.command_timeout,
                stdin=submission.stdin,
            )
        except (SchedulerUnavailable, CommandRefused) as e:
            raise SubmitFailed(f"The app could not be started on the portal host: {e}") from None
        job_id = out.strip().splitlines()[-1] if out.strip() else ""
        if not local.JOB_ID.fullmatch(job_id):
            raise SubmitFailed(
                f"The app could not be started on the portal host: no job id in {out[-200:]!r}"
            )
        return job_id

    async def status(self, job_id: str, max_age: float | None = None) -> JobStatus | None:
        return await LOCAL_STATUS.status(job_id)

    async def cancel(self, job_id: str, wait: bool = True) -> None:
        """End the session's whole process tree, as the user: TERM to the supervisor and its
        process group, KILL after ``local_grace`` (the command waits for that itself)."""
        grace = self.settings.local_grace
        argv = local.make_stop_argv(self.settings.python_command, job_id, grace)
        try:
            out = await self.run_as_user(argv, {}, grace + self.settings.command_timeout)
            self.log.info("%s: %s %s", self.subject, job_id, out.strip())
        except (SchedulerUnavailable, CommandRefused) as e:
            self.log.warning("%s: stop %s: %s", self.subject, job_id, e)

    def describe(self, job_id: str) -> str:
        return f"The app's processes ({job_id})"

    async def progress(self, job_id: str, phase: str) -> dict:
        if not job_id:
            return {"progress": 10, "message": "Checking the form and starting the app here"}
        pid = job_id.split(":")[1]
        if phase == "waiting":
            return {
                "progress": 80,
                "message": f"The app runs on the portal host (process {pid}); "
                "waiting for its server to answer",
            }
        status = await self.status(job_id)
        if status is None:
            return {"progress": 20, "message": f"Started process {pid}; cannot read its state"}
        if status.is_running:
            return {
                "progress": 60,
                "message": f"Starting the app on the portal host (process {pid})",
            }
        return {"progress": 90, "message": f"The app's processes ({pid}) ended"}
