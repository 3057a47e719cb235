"""SlurmSessionSpawner: an interactive app (JupyterLab first) as a Slurm job, one per JupyterHub
*named server*; and PortalSpawner, the one ``spawner_class`` that gives the default server to the
PUN and every named server to the session spawner.

Why a direct :class:`~jupyterhub.spawner.Spawner` subclass and not batchspawner's
``SlurmSpawner``: every part of batchspawner a portal must keep safe would be overridden anyway
(submit: its ``user_options`` merge is the template-injection hole and it runs a shell string;
status: one ``sudo squeue`` per session, errors read as "job gone" (#315); progress: no
percentages or reasons; port: its ``/api/batchspawner`` handler ``setattr``s any spawner
attribute from the job's JSON and registers itself at import). What would be left is its trait
surface (``req_*``, ``exec_prefix``), which we must *not* honour because it reopens those holes.
Not importing batchspawner at all also guarantees its handler is never registered.

The spawner is glue (traits, validation, state, the Spawner contract); everything that depends
on where a session runs is the cluster's *job adapter* (:mod:`ondemand_hub.scheduler.adapter`:
``slurm`` in :mod:`~ondemand_hub.scheduler.slurm_adapter`, ``local`` in
:mod:`~ondemand_hub.scheduler.local_adapter`, chosen once per cluster, and for a saved job by its
id). How a session runs:

* ``user_options`` = ``{"app": id, "cluster": id (optional), <form fields>}``, validated by the
  adapter (:func:`ondemand_hub.site.apps.validate_options` against a Slurm cluster's live
  partitions, one cached ``sinfo`` per cluster; none on the local cluster); anything refused is
  a 400 :class:`SpawnException` naming the field.
* First ondemand-stage is asked whether the hub may act as the user at all (``user check``: the
  same account checks as for a PUN, so root, ``slurm``, ``munge``, disabled, locked and expired
  accounts are refused before anything is made). Then the session folder
  ``~/ondemand/sessions/<server name>`` is created and the adapter's submission (``sbatch``, or
  the local ``start``) is run *as the user*, each through ``ondemand-stage user run`` (the
  spawners' one ``stage_command``: directly for a root hub, through the one sudo rule for a
  service-account hub). The script goes on stdin; the hub's ``JUPYTERHUB_*`` variables (the
  server token among them) go to the helper on stdin and reach the job only through the
  submission's environment or input: they are never written to a file or put on a command line.
* The job id is written to the hub database as soon as the submission returns.
* Port: no report endpoint. The job's launcher (:mod:`ondemand_hub.launcher`, ``jupyter_cmd``)
  starts the server on a free port of the adapter's ``listen_ip`` and, once it accepts
  connections, writes the port to ``port.<job id>`` in the session folder; the hub reads that
  file *as the user* and accepts only a whole number from 1024 to 65535. A user can only point
  their own session's route somewhere.
* Job state comes from the adapter's one shared source per cluster (one ``squeue -t all`` per
  interval for every session of a Slurm cluster; ``/proc`` for local jobs). A scheduler that
  does not answer means "unknown" (``poll`` returns None), a job that is not listed or ended
  means "gone" (1).
"""

from __future__ import annotations

import asyncio
import math
import os
import pwd
import shutil
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jupyterhub.spawner import Spawner, SpawnException
from traitlets import Float, Integer, List, Unicode, default

from ..scheduler.adapter import (
    SUBMITTING,
    AdapterSettings,
    CommandRefused,
    JobAdapter,
    SubmissionRefused,
    SubmitFailed,
    adapter_for,
    is_gone,
    lost_words,
)
from ..scheduler.batch import BatchScriptError, SessionContext, make_batch_script
from ..scheduler.local_adapter import LocalAdapter
from ..scheduler.status import SchedulerUnavailable
from ..site.apps import App, FormError, default_app_dirs, load_apps
from ..site.clusters import LOCAL_CLUSTER, Cluster, default_clusters_dir, load_clusters
from .pun import PUNSpawner
from .stage import StageClient, StageCommandError

_PASSED_ENV_PREFIX = "JUPYTERHUB_"

#: The job's launcher (ondemand_hub/launcher.py), run in the session folder: starts the server
#: on a free port of the address it is given and writes that port to ``port.<job id>`` once the
#: server accepts connections. ``-I``: nothing from the folder or PYTHON* variables is imported.
LAUNCHER = ("-I", "-m", "ondemand_hub.launcher")


class SlurmSessionSpawner(StageClient, Spawner):
    """One interactive app session as a Slurm job (a JupyterHub named server)."""

    app_dirs = List(
        Unicode(),
        help="Directories of app directories; a later one's app replaces an earlier one's.",
    ).tag(config=True)

    @default("app_dirs")
    def _default_app_dirs(self):
        return default_app_dirs()

    clusters_dir = Unicode(
        help="The clusters.d directory (default $ONDEMAND_HUB_CLUSTERS_DIR or "
        "/etc/ondemand-hub/clusters.d)."
    ).tag(config=True)

    @default("clusters_dir")
    def _default_clusters_dir(self):
        return default_clusters_dir()

    singleuser_command = Unicode(
        help="""Absolute path of the single-user server on the compute nodes: jupyterhub-singleuser
        or, the default, ``ondemand-session-server`` (the same, ~0.6 s faster to start)."""
    ).tag(config=True)

    @default("singleuser_command")
    def _default_singleuser_command(self):
        return os.path.join(
            os.path.dirname(os.path.abspath(sys.executable)), "ondemand-session-server"
        )

    python_command = Unicode(
        help="Absolute path of a Python 3 on the compute nodes (runs the one-line launcher)."
    ).tag(config=True)

    @default("python_command")
    def _default_python_command(self):
        return os.path.abspath(sys.executable)

    status_interval = Float(
        3.0, help="Seconds one shared squeue answer is reused (all sessions of a cluster)."
    ).tag(config=True)

    start_poll_interval = Float(
        0.25,
        help="""Seconds between checks while a session starts (job state, then its port file).

        Job states come from the shared squeue answer, refreshed at most this often while any
        spawn waits: still one squeue for all starting sessions together. 0.25 s keeps the
        wait after the job starts short without loading slurmctld.
        """,
    ).tag(config=True)

    port_poll_interval = Float(
        0.1,
        help="""Seconds between reads of the port file once the job runs. The launcher writes
        it when the server already answers, so the sooner it is read, the sooner Connect shows.
        """,
    ).tag(config=True)

    partitions_interval = Float(
        30.0, help="Seconds one sinfo answer (the partitions offered) is reused."
    ).tag(config=True)

    command_timeout = Float(
        30.0, help="Seconds for one scheduler command (Slurm needs ~9 s to give up)."
    ).tag(config=True)

    stop_wait = Float(15.0, help="Seconds stop() waits for the job to leave the queue.").tag(
        config=True
    )

    log_lines = Integer(20, help="Lines of output.log shown when a job ends early.").tag(
        config=True
    )

    submit_lookups = Integer(
        3, help="Times squeue is asked for the session's job after a failed sbatch."
    ).tag(config=True)

    local_grace = Integer(
        5,
        help="""Seconds a local session's processes get between TERM and KILL (stop, walltime,
        or the app's script ending). 5 s lets JupyterLab save and close its kernels.""",
    ).tag(config=True)

    local_default_hours = Integer(
        8,
        help="""Walltime in hours of a local session whose app has no ``bc_num_hours`` field
        (a local session always has a walltime; with the field, the form's value is used).""",
    ).tag(config=True)

    @default("start_timeout")
    def _default_start_timeout(self):
        return 900  # a queued job may wait; the progress page says why

    @default("http_timeout")
    def _default_http_timeout(self):
        return 60

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.job_id = ""
        self.cluster_id = ""
        #: the host the session's server was up on (its job ran): a job queued again is over
        self.ran_on = ""
        self.phase = ""
        #: the adapter of the job being started or run (None: not known yet)
        self.job_adapter: JobAdapter | None = None

    # -- state -------------------------------------------------------------------------------

    def load_state(self, state):
        super().load_state(state)
        self.job_id = str(state.get("job_id", ""))
        self.cluster_id = str(state.get("cluster", ""))
        self.ran_on = str(state.get("ran_on", ""))
        self.job_adapter = None

    def get_state(self):
        state = super().get_state()
        if self.job_id:
            state["job_id"] = self.job_id
            state["cluster"] = self.cluster_id
            if self.ran_on:
                state["ran_on"] = self.ran_on
        return state

    def clear_state(self):
        super().clear_state()
        self.job_id = ""
        self.cluster_id = ""
        self.ran_on = ""

    def persist_state(self) -> None:
        """Write the state to the hub DB now (JupyterHub itself only does after start())."""
        from sqlalchemy.orm import object_session

        if self.orm_spawner is None:
            return
        self.orm_spawner.state = self.get_state()
        session = object_session(self.orm_spawner)
        if session is not None:
            session.commit()

    # -- site: clusters, apps, partitions ----------------------------------------------------

    def clusters(self) -> list[Cluster]:
        clusters, errors = load_clusters(self.clusters_dir)
        for error in errors:
            self.log.warning("clusters.d: %s", error)
        return clusters

    def cluster(self, cluster_id: str | None = None) -> Cluster:
        clusters = self.clusters()
        if cluster_id is None:
            visible = [c for c in clusters if not c.hidden]
            if not visible:
                raise self._refuse("cluster", "no cluster is configured")
            return visible[0]
        for c in clusters:
            if c.id == cluster_id:
                return c
        raise self._refuse("cluster", f"unknown cluster {cluster_id!r}")

    def adapter_for(self, cluster: Cluster, job_id: str = "") -> JobAdapter:
        """The job adapter of ``cluster`` (:mod:`ondemand_hub.scheduler.adapter`) or, for a
        saved ``job_id``, of the backend that started it (a local job is known by its id,
        whatever clusters.d says now), with this spawner's settings."""
        settings = AdapterSettings(
            command_timeout=self.command_timeout,
            status_interval=self.status_interval,
            partitions_interval=self.partitions_interval,
            stop_wait=self.stop_wait,
            submit_lookups=self.submit_lookups,
            python_command=self.python_command,
            local_grace=self.local_grace,
            local_default_hours=self.local_default_hours,
        )
        return adapter_for(
            cluster,
            self.user.name,
            self._run_for_adapter,
            settings,
            log=self.log,
            subject=f"{self.user.name}/{self.name}",
            job_id=job_id,
        )

    def adapter_of_job(self) -> JobAdapter:
        """The adapter of this session's saved job (SpawnException when clusters.d has no
        cluster at all)."""
        if self.job_adapter is None or not self.job_adapter.owns(self.job_id):
            try:
                cluster = self._cluster_for_state()
            except SpawnException:
                if not LocalAdapter.owns(self.job_id):
                    raise
                cluster = LOCAL_CLUSTER  # a local job needs nothing from clusters.d
            self.job_adapter = self.adapter_for(cluster, self.job_id)
        return self.job_adapter

    def apps(self) -> dict[str, App]:
        apps, errors = load_apps(self.app_dirs)
        for error in errors:
            self.log.warning("apps: %s", error)
        return apps

    @staticmethod
    def _refuse(field: str, message: str) -> SpawnException:
        return SpawnException(
            f"Invalid option {field!r}: {message}", reason="invalid_options", status_code=400
        )

    async def validated_options(self) -> tuple[App, Cluster, dict[str, Any]]:
        """The app, the cluster and clean form values from ``user_options``, or a 400."""
        options = dict(self.user_options or {})
        app_id = options.pop("app", None)
        cluster_id = options.pop("cluster", None)
        apps = self.apps()
        if not isinstance(app_id, str) or app_id not in apps:
            known = ", ".join(apps) or "none installed"
            raise self._refuse("app", f"expected one of: {known}")
        if cluster_id is not None and not isinstance(cluster_id, str):
            raise self._refuse("cluster", "expected a cluster id")
        cluster = self.cluster(cluster_id)
        try:
            values = await self.adapter_for(cluster).validate(apps[app_id], options)
        except FormError as e:
            raise self._refuse(e.field, e.message) from None
        except SchedulerUnavailable as e:
            raise SpawnException(
                f"The scheduler of {cluster.title} did not answer: {e}",
                reason="scheduler_unavailable",
                status_code=503,
            ) from None
        return apps[app_id], cluster, values

    # -- running commands as the user --------------------------------------------------------

    async def check_account(self) -> None:
        """Refuse, before anything is made, a user ondemand-stage will not act as (a system,
        disabled, locked or expired account: a hub admin can create any hub user)."""
        try:
            await self.call_stage(["user", "check", "--user", self.user.name])
        except StageCommandError as e:
            self.log.warning("%s/%s: refused: %s", self.user.name, self.name, e)
            if not str(e).startswith(f"user {self.user.name!r} "):  # not about the account
                raise SpawnException(
                    f"The portal cannot start sessions now: {e}",
                    reason="stage_failed",
                    status_code=503,
                ) from None
            raise SpawnException(
                f"Sessions are refused for {self.user.name!r}: {e}",
                reason="account_refused",
                status_code=403,
            ) from None

    async def run_as_user(
        self, argv: list[str], env: dict[str, str], timeout: float, stdin: bytes | None = None
    ) -> str:
        """Run ``argv`` as the session's user through ``ondemand-stage user run``; its stdout.
        A program that fails raises SchedulerUnavailable with its last line of stderr, a
        refusal of the helper StageCommandError. The program is given by its absolute path
        (from the hub's PATH), and only ``JUPYTERHUB_*`` and ``SLURM_CONF`` of ``env`` go."""
        program = argv[0]
        if not os.path.isabs(program):
            program = shutil.which(program, path=os.environ.get("PATH")) or program
        seconds = max(1, math.ceil(timeout))
        request = {
            "env": {k: v for k, v in env.items() if k.startswith(_PASSED_ENV_PREFIX)}
            | ({"SLURM_CONF": env["SLURM_CONF"]} if "SLURM_CONF" in env else {}),
            "input": stdin.decode() if stdin else "",
        }
        args = ["user", "run", "--user", self.user.name, f"--timeout={seconds}", "--"]
        done = await self.call_stage([*args, program, *argv[1:]], request, timeout=seconds + 10)
        if done["returncode"] != 0:
            lines = done["stderr"].strip().splitlines()
            name = os.path.basename(program)
            raise SchedulerUnavailable(
                lines[-1] if lines else f"{name} exited {done['returncode']}"
            )
        return done["stdout"]

    async def _run_for_adapter(
        self, argv: list[str], env: dict[str, str], timeout: float, stdin: bytes | None = None
    ) -> str:
        """:meth:`run_as_user` as the adapters expect it (a refusal of the helper is their
        CommandRefused)."""
        try:
            return await self.run_as_user(argv, env, timeout, stdin=stdin)
        except StageCommandError as e:
            raise CommandRefused(str(e)) from None

    def session_dir(self) -> str:
        home = pwd.getpwnam(self.user.name).pw_dir
        return os.path.join(home, "ondemand", "sessions", self.name)

    async def read_as_user(self, path: str, tail: int | None = None) -> str:
        argv = ["tail", "-n", str(tail), "--", path] if tail else ["cat", "--", path]
        return await self.run_as_user(argv, {}, timeout=self.command_timeout)

    async def read_port(self) -> int | None:
        path = self.adapter_of_job().port_file(self.session_dir(), self.job_id)
        try:
            text = await self.read_as_user(path)
        except (SchedulerUnavailable, StageCommandError):
            return None  # not written yet (or not readable now: unknown, keep waiting)
        text = text.strip()
        if text.isdigit() and 1024 <= int(text) <= 65535:
            return int(text)
        self.log.warning("%s/%s: ignoring port file %r", self.user.name, self.name, text[:40])
        return None

    async def log_tail(self) -> str:
        try:
            path = os.path.join(self.session_dir(), "output.log")
            return (await self.read_as_user(path, tail=self.log_lines)).strip()
        except (SchedulerUnavailable, StageCommandError) as e:
            return f"(no output.log: {e})"

    # -- the Spawner contract ----------------------------------------------------------------

    def session_context(self, app: App, env: dict[str, str], ip: str) -> SessionContext:
        """What the app's script template sees besides the form values."""
        return SessionContext(
            app_id=app.id,
            session_id=self.name,
            session_dir=self.session_dir(),
            hub_api_url=env["JUPYTERHUB_API_URL"],
            hub_prefix=env["JUPYTERHUB_SERVICE_PREFIX"],
            jupyter_cmd=(self.python_command, *LAUNCHER, self.singleuser_command, ip),
        )

    async def make_session_dir(self, path: str) -> None:
        try:
            argv = ["install", "-d", "-m", "0700", "--", path]
            await self.run_as_user(argv, {}, self.command_timeout)
        except (SchedulerUnavailable, StageCommandError) as e:
            raise SpawnException(
                f"The session folder could not be made: {e}",
                reason="submit_failed",
                status_code=503,
            ) from None

    async def submit(self, app: App, cluster: Cluster, values: dict[str, Any]) -> str:
        """Submit the session through the cluster's adapter; its job id."""
        env = {k: v for k, v in self.get_env().items() if k.startswith(_PASSED_ENV_PREFIX)}
        adapter = self.job_adapter = self.adapter_for(cluster)
        try:
            context = self.session_context(app, env, adapter.listen_ip)
            script = make_batch_script(app, values, context)
            submission = adapter.make_submission(script, values, context, env)
        except (BatchScriptError, SubmissionRefused) as e:
            raise SpawnException(str(e), reason="invalid_options", status_code=400) from None
        await self.make_session_dir(context.session_dir)
        try:
            return await adapter.submit(submission)
        except SubmitFailed as e:
            raise SpawnException(str(e), reason="submit_failed", status_code=503) from None

    async def start(self):
        app, cluster, values = await self.validated_options()
        await self.check_account()
        self.phase = "submitting"
        job_id = await self.submit(app, cluster, values)
        self.job_id, self.cluster_id = job_id, cluster.id
        self.persist_state()
        adapter = self.adapter_of_job()
        subject = f"{self.user.name}/{self.name}"
        self.log.info("%s: %s job %s on cluster %s", subject, adapter.name, job_id, cluster.id)
        self.phase = "queued"
        return await self._wait_for_server(adapter)

    async def _wait_for_server(
        self, adapter: JobAdapter, deadline: float | None = None
    ) -> tuple[str, int] | None:
        """Wait until the job runs and its launcher has written its port: ``(host, port)``.
        A job that ends first raises the spawn's error with its own output; past ``deadline``
        (monotonic) the answer is None."""
        job_id = self.job_id
        while deadline is None or time.monotonic() < deadline:
            status = await adapter.status(job_id, max_age=self.start_poll_interval)
            if status is not None and is_gone(status):
                await adapter.refresh()  # a brand-new job may not be listed yet
                status = await adapter.status(job_id)
            if status is not None and is_gone(status):
                await self._ended_early(adapter, status)
            if status is not None and status.is_running and status.node:
                self.phase = "waiting"
                port = await self.read_port()
                if port:
                    self.ip, self.port = adapter.server_host(status), port
                    self.phase = "up"
                    self.ran_on = self.ip  # saved by JupyterHub after start()
                    return (self.ip, self.port)
                await asyncio.sleep(self.port_poll_interval)  # squeue is still asked ≤ 4/s
                continue
            await asyncio.sleep(self.start_poll_interval)
        return None

    async def get_url(self):
        """Asked by JupyterHub at startup for every server that ``poll()`` says is alive.

        A session whose spawn was still pending when the hub stopped (job queued, or running
        but its server not up yet) is *re-adopted* here: wait (up to ``start_timeout``) for the
        job to run and write its port, then answer the job's real address, which JupyterHub
        stores and routes. If the job ends first, or is still queued at the deadline, the stored
        address is returned: JupyterHub then finds nothing there within ``http_timeout`` and
        stops the server, which cancels the job (stop()). Never raises: an exception here would
        fail the hub's whole startup check.
        """
        stored = self.server.url
        if not self.job_id:
            return stored
        try:
            adapter = self.adapter_of_job()
            deadline = time.monotonic() + self.start_timeout
            self.phase = "queued"
            address = await self._wait_for_server(adapter, deadline)
        except SpawnException as e:
            self.log.warning("%s/%s: not re-adopted: %s", self.user.name, self.name, e)
            return stored
        except Exception:
            self.log.exception("%s/%s: not re-adopted", self.user.name, self.name)
            return stored
        if address is None:
            self.log.warning(
                "%s/%s: job %s not up %s s after the hub started",
                self.user.name,
                self.name,
                self.job_id,
                self.start_timeout,
            )
            return stored
        url = urlsplit(stored)
        return urlunsplit(url._replace(netloc=f"{address[0]}:{address[1]}"))

    async def _ended_early(self, adapter: JobAdapter, status):
        tail = await self.log_tail()
        job_id = self.job_id
        self.clear_state()
        self.persist_state()
        how = await adapter.how_it_ended(job_id, status)
        raise SpawnException(
            f"{adapter.describe(job_id)} ended before its server was up"
            f"{': ' + how if how else ''}. Last lines of output.log:\n{tail}",
            reason="job_ended",
            status_code=500,
        )

    def _cluster_for_state(self) -> Cluster:
        try:
            return self.cluster(self.cluster_id or None)
        except SpawnException:
            return self.cluster(None)

    async def poll(self):
        if not self.job_id:
            return 0
        try:
            adapter = self.adapter_of_job()
        except SpawnException:
            return None  # clusters.d broken: unknown, not gone
        status = await adapter.status(self.job_id)
        if status is None:
            return None
        if is_gone(status):
            return 1
        lost = lost_words(status, self.ran_on)
        if lost:
            # Its server is gone; a requeued job would run again where nothing routes to it.
            self.log.warning("%s/%s: %s: cancelling it", self.user.name, self.name, lost)
            await adapter.cancel(self.job_id, wait=False)
            return 1
        return None

    async def stop(self, now=False):
        if self.job_id:
            await self.adapter_of_job().cancel(self.job_id, wait=not now)
        self.clear_state()

    async def progress(self):
        last = None
        while True:
            event = await self._progress_event()
            if event != last:
                yield event
                last = event
            await asyncio.sleep(1)

    async def _progress_event(self) -> dict:
        if not self.job_id:
            if self.job_adapter is None:
                return dict(SUBMITTING)
            return await self.job_adapter.progress("", self.phase)
        try:
            adapter = self.adapter_of_job()
        except SpawnException:
            return {"progress": 20, "message": "Submitted; the scheduler is not answering"}
        return await adapter.progress(self.job_id, self.phase)


class PortalSpawner(Spawner):
    """``c.JupyterHub.spawner_class``: the default server ("") is the user's PUN
    (:class:`PUNSpawner`), every named server a :class:`SlurmSessionSpawner`.

    JupyterHub has one spawner class and builds each spawner with ``spawner_class(**kwargs)``
    (``User._new_spawner``); the server name is ``orm_spawner.name``. This class is never
    instantiated: its ``__new__`` builds the right spawner, which Python then returns as it is
    (``__init__`` is not called again on an object of another class). Each class keeps its own
    config section (``c.PUNSpawner``, ``c.SlurmSessionSpawner``).
    """

    def __new__(cls, *args, **kwargs):
        orm_spawner = kwargs.get("orm_spawner")
        target = SlurmSessionSpawner if orm_spawner is not None and orm_spawner.name else PUNSpawner
        return target(*args, **kwargs)

    # JupyterHub refuses a Spawner subclass without these (Spawner.__init_subclass__); they are
    # never called, since __new__ returns an object of another class.
    async def start(self):
        raise RuntimeError("PortalSpawner is never instantiated")

    async def stop(self, now=False):
        raise RuntimeError("PortalSpawner is never instantiated")

    async def poll(self):
        raise RuntimeError("PortalSpawner is never instantiated")
