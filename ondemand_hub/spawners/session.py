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

How a session runs:

* ``user_options`` = ``{"app": id, "cluster": id (optional), <form fields>}``, validated by
  :func:`ondemand_hub.site.apps.validate_options` against the cluster's live partitions (one
  cached ``sinfo`` per cluster); anything refused is a 400 :class:`SpawnException` naming the field.
* First ondemand-stage is asked whether the hub may act as the user at all (``user check``: the
  same account checks as for a PUN, so root, ``slurm``, ``munge``, disabled, locked and expired
  accounts are refused before anything is made). Then the session folder
  ``~/ondemand/sessions/<server name>`` is created and ``sbatch`` is run *as the user*, each
  through ``ondemand-stage user run`` (the spawners' one ``stage_command``: directly for a root
  hub, through the one sudo rule for a service-account hub). The script goes on stdin; the hub's
  ``JUPYTERHUB_*`` variables (the server token among them) go to the helper on stdin and reach
  the job only through sbatch's environment with ``--export=<exactly those names>``: they are
  never written to a file or put on a command line.
* The job id is written to the hub database as soon as sbatch returns.
* Port: no report endpoint. The job's launcher (:mod:`ondemand_hub.launcher`, ``jupyter_cmd``)
  starts the server on a free port and, once it accepts connections, writes the port to
  ``port.<job id>`` in the session folder; the hub reads that file *as the user* and accepts
  only a whole number from 1024 to 65535. A user can only point their own session's route
  somewhere.
* Job state comes from one :class:`~ondemand_hub.scheduler.status.StatusCache` per cluster,
  shared by every session of the hub (one ``squeue -t all`` per interval). A squeue error means
  "unknown" (``poll`` returns None), a job that is not listed or ended means "gone" (1).

On a cluster with ``adapter: local`` (the built-in default when clusters.d holds none) the same
app script runs as a process tree of the user on the portal host instead
(:mod:`ondemand_hub.scheduler.local`, docs/local-cluster.md): started and stopped through the
same ``ondemand-stage user run``, job id ``local:<pid>:<start time>``, state read from
``/proc``, the server on 127.0.0.1 only. Everything else (state, port file, re-adoption, early
failure) is the same code as for Slurm.
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

from ..scheduler import local
from ..scheduler.batch import BatchScriptError, SessionContext, make_batch_script, make_sbatch_argv
from ..scheduler.slurm import (
    SlurmCommands,
    job_ending,
    parse_partitions,
    parse_sbatch,
    parse_scontrol_job,
    parse_squeue,
    plain_reason,
    queue_position,
)
from ..scheduler.slurm import run as run_command
from ..scheduler.status import JobStatus, SchedulerUnavailable, StatusCache
from ..site.apps import App, FormError, default_app_dirs, load_apps, validate_options
from ..site.clusters import Cluster, default_clusters_dir, load_clusters
from .pun import PUNSpawner
from .stage import StageClient, StageCommandError

_PASSED_ENV_PREFIX = "JUPYTERHUB_"
#: Local jobs' states, read from /proc: one for the whole hub.
_LOCAL_STATUS = local.LocalStatus()
#: States after which a job will never run again (squeue's long names, plus NOTFOUND).
GONE = "gone"

#: The job's launcher (ondemand_hub/launcher.py), run in the session folder: starts the server
#: on a free port of the address it is given and writes that port to ``port.<job id>`` once the
#: server accepts connections. ``-I``: nothing from the folder or PYTHON* variables is imported.
LAUNCHER = ("-I", "-m", "ondemand_hub.launcher")
#: Where a Slurm job's server listens: the hub reaches it on the compute node.
SLURM_IP = "0.0.0.0"


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


#: Seconds the controller's clock may be behind the hub's when a timed-out submission is
#: looked up by its submit time.
SUBMIT_CLOCK_SKEW = 30


def submit_epoch(text: str) -> float | None:
    """squeue's ``%V`` (submit time, ``2026-11-23T00:27:49`` in local time) as epoch seconds;
    None when it is not such a time."""
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _gone(status: JobStatus) -> bool:
    return not (status.is_pending or status.is_running)


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

    # class-level: shared by every session of the hub
    _status_caches: dict[str, StatusCache] = {}
    _partitions: dict[str, tuple[float, list]] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.job_id = ""
        self.cluster_id = ""
        self.phase = ""
        self.adapter = ""  # of the cluster a start() is submitting to

    # -- state -------------------------------------------------------------------------------

    def load_state(self, state):
        super().load_state(state)
        self.job_id = str(state.get("job_id", ""))
        self.cluster_id = str(state.get("cluster", ""))

    def get_state(self):
        state = super().get_state()
        if self.job_id:
            state["job_id"] = self.job_id
            state["cluster"] = self.cluster_id
        return state

    def clear_state(self):
        super().clear_state()
        self.job_id = ""
        self.cluster_id = ""

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

    @staticmethod
    def commands(cluster: Cluster) -> SlurmCommands:
        return SlurmCommands(
            bin_dir=cluster.bin_dir, conf=cluster.conf, cluster=cluster.slurm_cluster
        )

    def status_cache(self, cluster: Cluster) -> StatusCache:
        cache = self._status_caches.get(cluster.id)
        if cache is None:
            commands = self.commands(cluster)
            timeout = self.command_timeout

            async def query():
                return parse_squeue(
                    await run_command(commands.squeue_all(), commands.env(), timeout=timeout)
                )

            cache = self._status_caches[cluster.id] = StatusCache(query, self.status_interval)
        return cache

    def job_status(self) -> StatusCache | local.LocalStatus:
        """Where the state of this session's job comes from: ``/proc`` for a local job (known
        by its id, whatever clusters.d says now), else the shared squeue cache of its cluster
        (SpawnException when clusters.d has no cluster at all)."""
        if local.is_local_job(self.job_id):
            return _LOCAL_STATUS
        return self.status_cache(self._cluster_for_state())

    async def partitions(self, cluster: Cluster) -> list:
        cached = self._partitions.get(cluster.id)
        if cached and time.monotonic() - cached[0] < self.partitions_interval:
            return cached[1]
        commands = self.commands(cluster)
        text = await run_command(commands.sinfo_partitions(), commands.env(), self.command_timeout)
        parts = parse_partitions(text)
        self._partitions[cluster.id] = (time.monotonic(), parts)
        return parts

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
        app = apps[app_id]
        if cluster.adapter == "local":
            return app, cluster, self._local_values(app, options)
        # Unknown fields are refused before anything asks the scheduler.
        try:
            validate_options(app, {k: v for k, v in options.items() if k != "bc_queue"}, [])
        except FormError as e:
            if e.field not in ("bc_queue", "bc_num_gpus"):
                raise self._refuse(e.field, e.message) from None
        try:
            partitions = await self.partitions(cluster)
        except SchedulerUnavailable as e:
            raise SpawnException(
                f"The scheduler of {cluster.title} did not answer: {e}",
                reason="scheduler_unavailable",
                status_code=503,
            ) from None
        try:
            values = validate_options(app, options, partitions)
        except FormError as e:
            raise self._refuse(e.field, e.message) from None
        return app, cluster, values

    def _local_values(self, app: App, options: dict[str, Any]) -> dict[str, Any]:
        """Form values for the local cluster: no partitions (an empty ``bc_queue``, as a form
        sends it, is the same as none), so any partition or GPU asked for is refused."""
        if options.get("bc_queue") in (None, ""):
            options.pop("bc_queue", None)
        try:
            return validate_options(app, options, [])
        except FormError as e:
            raise self._refuse(e.field, e.message) from None

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

    def session_dir(self) -> str:
        home = pwd.getpwnam(self.user.name).pw_dir
        return os.path.join(home, "ondemand", "sessions", self.name)

    async def read_as_user(self, path: str, tail: int | None = None) -> str:
        argv = ["tail", "-n", str(tail), "--", path] if tail else ["cat", "--", path]
        return await self.run_as_user(argv, {}, timeout=self.command_timeout)

    async def read_port(self) -> int | None:
        try:
            text = await self.read_as_user(os.path.join(self.session_dir(), f"port.{self.job_id}"))
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
        """Submit the session; its job id (Slurm's, or ``local:<pid>:<start time>``)."""
        env = {k: v for k, v in self.get_env().items() if k.startswith(_PASSED_ENV_PREFIX)}
        if cluster.adapter == "local":
            return await self.start_local(app, values, env)
        commands = self.commands(cluster)
        try:
            context = self.session_context(app, env, SLURM_IP)
            script = make_batch_script(app, values, context)
            argv = make_sbatch_argv(commands, values, context)
        except BatchScriptError as e:
            raise SpawnException(str(e), reason="invalid_options", status_code=400) from None
        # Exactly the hub's variables reach the job, from sbatch's environment (not a file).
        argv = ["--export=" + ",".join(sorted(env)) if a == "--export=NONE" else a for a in argv]
        await self.make_session_dir(context.session_dir)
        submitted_at = time.time()
        try:
            out = await self.run_as_user(
                argv, {**commands.env(), **env}, self.command_timeout, stdin=script.encode()
            )
            return parse_sbatch(out)
        except StageCommandError as e:
            raise SpawnException(
                f"The job could not be submitted: {e}", reason="submit_failed", status_code=503
            ) from None
        except SchedulerUnavailable as e:
            # sbatch may have timed out or lost the controller's answer *after* the job was
            # accepted (OOD #3198): adopt that job rather than lose it or submit it twice.
            message = str(e).lower()
            definitive = "submission failed" in message and "timed out" not in message
            job_id = (
                ""
                if definitive
                else await self.find_submitted(commands, job_name_of(argv), since=submitted_at)
            )
            if job_id:
                self.log.warning(
                    "%s/%s: sbatch failed (%s) but job %s was submitted: adopting it",
                    self.user.name,
                    self.name,
                    e,
                    job_id,
                )
                return job_id
            raise SpawnException(
                f"The job could not be submitted: {e}", reason="submit_failed", status_code=503
            ) from None

    async def start_local(self, app: App, values: dict[str, Any], env: dict[str, str]) -> str:
        """Start the app's script as a process tree of the user on this host
        (:mod:`ondemand_hub.scheduler.local`); its job id. The hub's variables go on stdin."""
        hours = values.get("bc_num_hours") or self.local_default_hours
        try:
            context = self.session_context(app, env, local.LOCAL_IP)
            script = make_batch_script(app, values, context)
            argv = local.make_start_argv(
                self.python_command, context.session_dir, int(hours) * 3600, self.local_grace
            )
            stdin = local.make_start_input(script, env)
        except (BatchScriptError, local.LocalSessionError) as e:
            raise SpawnException(str(e), reason="invalid_options", status_code=400) from None
        await self.make_session_dir(context.session_dir)
        try:
            out = await self.run_as_user(argv, {}, self.command_timeout, stdin=stdin)
        except (SchedulerUnavailable, StageCommandError) as e:
            raise SpawnException(
                f"The app could not be started on the portal host: {e}",
                reason="submit_failed",
                status_code=503,
            ) from None
        job_id = out.strip().splitlines()[-1] if out.strip() else ""
        if not local.JOB_ID.fullmatch(job_id):
            raise SpawnException(
                f"The app could not be started on the portal host: no job id in {out[-200:]!r}",
                reason="submit_failed",
                status_code=503,
            )
        return job_id

    async def find_submitted(
        self, commands: SlurmCommands, job_name: str, since: float | None = None
    ) -> str:
        """The newest queued or running job of this user called ``job_name`` submitted at or
        after ``since`` (epoch seconds, less ``SUBMIT_CLOCK_SKEW`` for the controller's clock),
        or "" (none, or the scheduler does not answer). An older job with the same name (a
        server name used again through the REST API) is never adopted. Asked
        ``submit_lookups`` times, a second apart: a job accepted at the very end of a timed-out
        sbatch may be listed a moment later."""
        argv = commands.argv(
            "squeue", "-h", "-o", "%i|%V", "-t", "PD,CF,R", "-u", self.user.name, "-n", job_name
        )
        for attempt in range(self.submit_lookups):
            if attempt:
                await asyncio.sleep(1)
            try:
                out = await run_command(argv, commands.env(), timeout=self.command_timeout)
            except SchedulerUnavailable as e:
                self.log.warning("%s/%s: squeue -n %s: %s", self.user.name, self.name, job_name, e)
                continue
            ids = []
            for line in out.splitlines():
                job_id, _, submitted = line.strip().partition("|")
                if not job_id.isdigit():
                    continue
                when = submit_epoch(submitted)
                if since is not None and when is not None and when < since - SUBMIT_CLOCK_SKEW:
                    self.log.info(
                        "%s/%s: not adopting older job %s", self.user.name, self.name, job_id
                    )
                    continue
                ids.append(job_id)
            if ids:
                return max(ids, key=int)
        return ""

    async def start(self):
        app, cluster, values = await self.validated_options()
        await self.check_account()
        self.phase, self.adapter = "submitting", cluster.adapter
        job_id = await self.submit(app, cluster, values)
        self.job_id, self.cluster_id = job_id, cluster.id
        self.persist_state()
        what = "started local session" if cluster.adapter == "local" else "submitted Slurm job"
        self.log.info("%s/%s: %s %s", self.user.name, self.name, what, job_id)
        self.phase = "queued"
        local_job = cluster.adapter == "local"
        return await self._wait_for_server(
            _LOCAL_STATUS if local_job else self.status_cache(cluster)
        )

    async def _wait_for_server(
        self, cache: StatusCache | local.LocalStatus, deadline: float | None = None
    ) -> tuple[str, int] | None:
        """Wait until the job runs and its launcher has written its port: ``(node, port)``.
        A job that ends first raises the spawn's error with its own output; past ``deadline``
        (monotonic) the answer is None."""
        job_id = self.job_id
        while deadline is None or time.monotonic() < deadline:
            status = await cache.status(job_id, max_age=self.start_poll_interval)
            if status is not None and _gone(status):
                await cache.refresh(force=True)  # a brand-new job may not be listed yet
                status = await cache.status(job_id)
            if status is not None and _gone(status):
                await self._ended_early(status)
            if status is not None and status.is_running and status.node:
                self.phase = "waiting"
                port = await self.read_port()
                if port:
                    self.ip, self.port = status.node.split(",")[0], port
                    self.phase = "up"
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
            cache = self.job_status()
            deadline = time.monotonic() + self.start_timeout
            self.phase = "queued"
            address = await self._wait_for_server(cache, deadline)
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

    async def _ended_early(self, status: JobStatus):
        tail = await self.log_tail()
        job_id = self.job_id
        self.clear_state()
        self.persist_state()
        if local.is_local_job(job_id):
            ended = f"The app's processes ({job_id})"
        else:
            ended = f"The job {job_id}"
        how = "" if local.is_local_job(job_id) else f": {await self._how_it_ended(job_id, status)}"
        raise SpawnException(
            f"{ended} ended before its server was up{how}. Last lines of output.log:\n{tail}",
            reason="job_ended",
            status_code=500,
        )

    async def _how_it_ended(self, job_id: str, status: JobStatus) -> str:
        """ "failed, exit code 3", "ended: it ran out of time"...: from ``scontrol show job``
        (squeue has no exit code); squeue's state when scontrol does not know the job any more."""
        try:
            commands = self.commands(self._cluster_for_state())
            text = await run_command(
                commands.scontrol_job(job_id), commands.env(), timeout=self.command_timeout
            )
            fields = parse_scontrol_job(text)
        except (SchedulerUnavailable, SpawnException, ValueError):
            fields = {}
        if fields.get("JobState"):
            return job_ending(fields["JobState"], fields.get("ExitCode", ""))
        if status.state == "NOTFOUND":
            return "it is gone from the queue"
        return job_ending(status.state)

    def _cluster_for_state(self) -> Cluster:
        try:
            return self.cluster(self.cluster_id or None)
        except SpawnException:
            return self.cluster(None)

    async def poll(self):
        if not self.job_id:
            return 0
        try:
            source = self.job_status()
        except SpawnException:
            return None  # clusters.d broken: unknown, not gone
        status = await source.status(self.job_id)
        if status is None:
            return None
        if _gone(status):
            return 1
        return None

    async def stop(self, now=False):
        if not self.job_id:
            self.clear_state()
            return
        if local.is_local_job(self.job_id):
            await self.stop_local()
            self.clear_state()
            return
        cluster = self._cluster_for_state()
        commands = self.commands(cluster)
        try:
            await self.run_as_user(
                commands.scancel(self.job_id), commands.env(), self.command_timeout
            )
        except (SchedulerUnavailable, StageCommandError) as e:
            self.log.warning("%s/%s: scancel %s: %s", self.user.name, self.name, self.job_id, e)
        if not now:
            cache = self.status_cache(cluster)
            deadline = time.monotonic() + self.stop_wait
            while time.monotonic() < deadline:
                await cache.refresh(force=True)
                status = await cache.status(self.job_id)
                if status is not None and _gone(status):
                    break
                await asyncio.sleep(0.5)
            else:
                self.log.warning(
                    "%s/%s: job %s still listed", self.user.name, self.name, self.job_id
                )
        self.clear_state()

    async def stop_local(self) -> None:
        """End a local session's whole process tree, as the user: TERM to the supervisor and its
        process group, KILL after ``local_grace`` (the command waits for that itself)."""
        argv = local.make_stop_argv(self.python_command, self.job_id, self.local_grace)
        try:
            out = await self.run_as_user(argv, {}, self.local_grace + self.command_timeout)
            self.log.info("%s/%s: %s %s", self.user.name, self.name, self.job_id, out.strip())
        except (SchedulerUnavailable, StageCommandError) as e:
            self.log.warning("%s/%s: stop %s: %s", self.user.name, self.name, self.job_id, e)

    async def progress(self):
        last = None
        while True:
            event = await self._progress_event()
            if event != last:
                yield event
                last = event
            await asyncio.sleep(1)

    async def _progress_event(self) -> dict:
        if self.adapter == "local" or local.is_local_job(self.job_id):
            return await self._local_progress_event()
        if not self.job_id:
            return {"progress": 10, "message": "Checking the form and submitting the job"}
        if self.phase == "waiting":
            return {"progress": 80, "message": "The job runs; waiting for the server to answer"}
        try:
            cache = self.job_status()
            status = await cache.status(self.job_id)
        except SpawnException:
            cache, status = None, None
        if status is None:
            return {"progress": 20, "message": "Submitted; the scheduler is not answering"}
        if status.is_pending:
            position = queue_position(getattr(cache, "jobs", {}), self.job_id)
            return {"progress": 30, "message": queued_message(self.job_id, status, position)}
        if status.is_running:
            return {"progress": 60, "message": f"Job {self.job_id} is starting on {status.node}"}
        return {"progress": 90, "message": f"Job {self.job_id} ended ({status.state.lower()})"}

    async def _local_progress_event(self) -> dict:
        if not self.job_id:
            return {"progress": 10, "message": "Checking the form and starting the app here"}
        pid = self.job_id.split(":")[1]
        if self.phase == "waiting":
            return {
                "progress": 80,
                "message": f"The app runs on the portal host (process {pid}); "
                "waiting for its server to answer",
            }
        status = await _LOCAL_STATUS.status(self.job_id)
        if status is None:
            return {"progress": 20, "message": f"Started process {pid}; cannot read its state"}
        if status.is_running:
            return {
                "progress": 60,
                "message": f"Starting the app on the portal host (process {pid})",
            }
        return {"progress": 90, "message": f"The app's processes ({pid}) ended"}


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
