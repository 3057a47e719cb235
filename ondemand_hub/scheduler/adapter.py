"""One interface for every backend a session can run on: the job adapter.

Modelled on Open OnDemand's ``ood_core`` (``lib/ood_core/job/adapter.rb``: ``submit``,
``status``, ``info``, ``delete`` …, one class per scheduler in ``adapters/``). The session
spawner (:mod:`ondemand_hub.spawners.session`) is glue: it validates the form, renders the app's
script, keeps its state and answers JupyterHub; everything that depends on *where* the session
runs is behind a :class:`JobAdapter`:

================  ========================================================================
``validate``      the form's values for this cluster (its partitions, or none)
``listen_ip``     the address the session's server binds (every interface on a compute
                  node, loopback on the portal host)
``make_submission``  pure: the argv, environment and stdin that start the job
``submit``        run that submission as the user; the job id
``status``        the job's :class:`~ondemand_hub.scheduler.status.JobStatus` from one
                  source per cluster shared by every session (None: unknown, never gone)
``server_host``   where the hub reaches the running job's server
``cancel``        end the job as the user
``describe`` / ``how_it_ended``   words for a job that ended before its server was up
``progress``      what the spawn's progress page says
================  ========================================================================

Implementations: :class:`~ondemand_hub.scheduler.slurm_adapter.SlurmAdapter` (``adapter:
slurm``) and :class:`~ondemand_hub.scheduler.local_adapter.LocalAdapter` (``adapter: local``).
A ``linux_host`` adapter (a login host over ssh, a process group ending at the walltime) fits the
same shape: ``make_submission`` wraps the start command in ``ssh``, ``status`` reads one shared
``ps`` per host and interval, ``server_host`` is the login host.

Every command an adapter runs *as the user* goes through the runner it is given (the spawner's
``ondemand-stage user run``): the adapter never starts a user's process itself. Commands that
only read the scheduler (``squeue``, ``sinfo``, ``scontrol``) run as the hub.
"""

from __future__ import annotations

import abc
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..site.clusters import Cluster
from .status import JobStatus, StatusCache

#: The progress page before the job is submitted (the backend may not be known yet).
SUBMITTING = {"progress": 10, "message": "Checking the form and submitting the job"}

#: Status caches shared by every session of the hub, one per cluster (and adapter).
STATUS_CACHES: dict[str, StatusCache] = {}


class CommandRefused(Exception):
    """The helper that runs commands as the user refused or failed: nothing was run (the
    message says why). A program that ran and failed is
    :class:`~ondemand_hub.scheduler.status.SchedulerUnavailable` instead."""


class SubmitFailed(Exception):
    """The job could not be started; the message says why, for the user."""


class SubmissionRefused(ValueError):
    """The submission cannot be built safely from these values (a 400: the message names the
    value at fault)."""


#: ``run(argv, env, timeout, stdin=None) -> stdout`` as the session's user. Raises
#: SchedulerUnavailable (the program failed: its last line of stderr) or CommandRefused.
RunAsUser = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class AdapterSettings:
    """The spawner's settings an adapter reads (``c.SlurmSessionSpawner.*``)."""

    command_timeout: float = 30.0
    status_interval: float = 3.0
    partitions_interval: float = 30.0
    stop_wait: float = 15.0
    submit_lookups: int = 3
    python_command: str = sys.executable
    local_grace: int = 5
    local_default_hours: int = 8


@dataclass(frozen=True)
class Submission:
    """What starts a job: ``argv`` run as the user with ``env`` and ``stdin``. ``job_name``
    identifies it to the scheduler (for finding a job whose submission timed out)."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None
    job_name: str = ""


def is_gone(status: JobStatus) -> bool:
    """Whether a job will never run again (ended, or no longer listed)."""
    return not (status.is_pending or status.is_running)


def lost_words(status: JobStatus | None, ran_on: str) -> str:
    """Why a session whose server was up on ``ran_on`` is over although its job is not gone, in
    words; "" while it runs (or nothing is known: ``None``, the scheduler unreachable).

    A job that ran and is queued again was requeued by Slurm (its node stopped responding and
    was set DOWN, or it was preempted or requeued by an administrator): its server is gone
    from ``ran_on`` and it would start again somewhere the hub does not route to; one that runs
    again already, on another host, is just as lost."""
    if status is None or not ran_on:
        return ""
    host = status.batch_host or status.node.split(",")[0]
    if not (status.is_pending or (status.is_running and host and host != ran_on)):
        return ""
    return (
        f"The job {status.job_id} stopped running on {ran_on} and Slurm requeued it "
        "(its node stopped responding, or the job was preempted or requeued)"
    )


class JobAdapter(abc.ABC):
    """How sessions run on one cluster. One instance per spawner and cluster; what is shared
    between sessions (status caches, partitions) lives in module-level registries keyed by
    cluster id."""

    #: ``v2.job.adapter`` of the clusters this class serves.
    name: ClassVar[str]
    #: The address the session's server binds (given to the launcher).
    listen_ip: ClassVar[str]

    def __init__(
        self,
        cluster: Cluster,
        user: str,
        run_as_user: RunAsUser,
        settings: AdapterSettings | None = None,
        log: logging.Logger | logging.LoggerAdapter | None = None,
        subject: str = "",
    ):
        self.cluster = cluster
        self.user = user
        self.run_as_user = run_as_user
        self.settings = settings or AdapterSettings()
        self.log = log or logging.getLogger(__name__)
        self.subject = subject or user  # "<user>/<server name>" in log lines

    @classmethod
    @abc.abstractmethod
    def owns(cls, job_id: str) -> bool:
        """Whether ``job_id`` has the form of this adapter's job ids (a saved session is
        given back to the adapter that started it, whatever clusters.d says now)."""

    @abc.abstractmethod
    async def validate(self, app: Any, options: Mapping[str, Any]) -> dict[str, Any]:
        """The form's clean values for this cluster. Raises
        :class:`~ondemand_hub.site.apps.FormError` (a 400 naming the field) or
        SchedulerUnavailable (the cluster cannot be asked what it offers)."""

    @abc.abstractmethod
    def make_submission(
        self, script: str, values: Mapping[str, Any], context: Any, env: Mapping[str, str]
    ) -> Submission:
        """Pure: how to start the rendered ``script`` for ``values`` in ``context`` (a
        :class:`~ondemand_hub.scheduler.batch.SessionContext`) with the hub's ``JUPYTERHUB_*``
        variables ``env``. Raises SubmissionRefused."""

    @abc.abstractmethod
    async def submit(self, submission: Submission) -> str:
        """Run ``submission`` as the user; the job id. Raises SubmitFailed."""

    @abc.abstractmethod
    async def status(self, job_id: str, max_age: float | None = None) -> JobStatus | None:
        """The job's state from the cluster's shared source, at most ``max_age`` seconds old
        (or the adapter's interval); None when it cannot be known (never "gone"). A job the
        scheduler no longer knows is returned with a state for which :func:`is_gone` holds."""

    async def refresh(self) -> None:
        """Ask the scheduler again now (a brand-new job may not be listed yet). Nothing to do
        for a source that always answers fresh."""
        return None

    def server_host(self, status: JobStatus) -> str:
        """The host the hub connects to for a running job's server: the batch host (the node
        that runs the job script), else the job's only node (a one-host backend)."""
        return status.batch_host or status.node.split(",")[0]

    def port_file(self, session_dir: str, job_id: str) -> str:
        """Where the job's launcher writes its server's port (read as the user)."""
        return f"{session_dir}/port.{job_id}"

    @abc.abstractmethod
    async def cancel(self, job_id: str, wait: bool = True) -> None:
        """End the job as the user; with ``wait``, return once it is gone (or a time limit
        passed). Failures are logged, never raised: the session is forgotten either way."""

    @abc.abstractmethod
    def describe(self, job_id: str) -> str:
        """The job as the subject of a sentence: "The job 42"."""

    async def how_it_ended(self, job_id: str, status: JobStatus) -> str:
        """How a job that ended went, in words ("failed, exit code 3"), or "" when nothing
        more is known than that it ended."""
        return ""

    @abc.abstractmethod
    async def progress(self, job_id: str, phase: str) -> dict:
        """The progress page's event (``{"progress": %, "message": words}``) for ``job_id``
        ("" before it is submitted) in the spawner's ``phase`` ("waiting": the job runs and
        its server is awaited)."""

    def shared_cache(self, make: Callable[[], StatusCache]) -> StatusCache:
        """This cluster's status cache, made on first use: one for every session of the hub."""
        key = f"{self.name}:{self.cluster.id}"
        cache = STATUS_CACHES.get(key)
        if cache is None:
            cache = STATUS_CACHES[key] = make()
        return cache


def adapter_class(cluster: Cluster, job_id: str = "") -> type[JobAdapter]:
    """The adapter for ``cluster`` or, for a saved ``job_id``, the one whose ids it has."""
    from .local_adapter import LocalAdapter
    from .slurm_adapter import SlurmAdapter

    classes: dict[str, type[JobAdapter]] = {"slurm": SlurmAdapter, "local": LocalAdapter}
    if job_id:
        for cls in classes.values():
            if cls.owns(job_id):
                return cls
    try:
        return classes[cluster.adapter]
    except KeyError:
        raise ValueError(f"cluster {cluster.id!r}: no adapter {cluster.adapter!r}") from None


def adapter_for(cluster: Cluster, *args: Any, job_id: str = "", **kwargs: Any) -> JobAdapter:
    """The adapter object for ``cluster`` (see :func:`adapter_class`); the other arguments are
    :class:`JobAdapter`'s."""
    return adapter_class(cluster, job_id)(cluster, *args, **kwargs)
