"""SlurmSessionSpawner without a hub or a scheduler: the glue around the job adapters (option
validation, 400 naming the field, before anything is submitted; state round-trip; the port file
accepting only a port; start, poll, stop, re-adoption, early failure and progress through the
cluster's adapter) and the PortalSpawner dispatch by server name. The adapters' own contracts:
tests/unit/test_job_adapters.py."""

import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.spawner import SpawnException

from ondemand_hub.scheduler import adapter as adapters
from ondemand_hub.scheduler import slurm_adapter
from ondemand_hub.scheduler.local_adapter import LocalAdapter
from ondemand_hub.scheduler.slurm import Partition
from ondemand_hub.scheduler.slurm_adapter import SlurmAdapter
from ondemand_hub.scheduler.status import JobStatus, SchedulerUnavailable, StatusCache
from ondemand_hub.spawners.pun import PUNSpawner
from ondemand_hub.spawners.session import PortalSpawner, SlurmSessionSpawner
from ondemand_hub.spawners.stage import StageCommandError

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = [
    Partition("debug", True, True, "1:00:00", 1, 2, 2, ""),
    Partition("batch", False, True, "1-00:00:00", 1, 2, 2, ""),
]


@pytest.fixture
def clusters_dir(tmp_path):
    d = tmp_path / "clusters.d"
    d.mkdir()
    (d / "hpc.yml").write_text("v2:\n  metadata:\n    title: HPC\n  job:\n    adapter: slurm\n")
    return d


@pytest.fixture(autouse=True)
def sinfo_calls(monkeypatch):
    """A fake of the partitions query (``sinfo``, which needs a controller): answers PARTITIONS
    and counts the calls. The shared caches start empty in every test."""
    calls = []

    async def partitions(self):
        calls.append(self.cluster.id)
        return PARTITIONS

    monkeypatch.setattr(SlurmAdapter, "partitions", partitions)
    monkeypatch.setattr(adapters, "STATUS_CACHES", {})
    monkeypatch.setattr(slurm_adapter, "PARTITIONS", {})
    return calls


def make_spawner(clusters_dir, options, name="lab1"):
    return SlurmSessionSpawner(
        user=SimpleNamespace(name="odt-alice"),
        orm_spawner=SimpleNamespace(name=name, server=None),
        app_dirs=[str(REPO / "apps")],
        clusters_dir=str(clusters_dir),
        user_options=options,
    )


def share_cache(cluster_id, cache, adapter="slurm"):
    """Make ``cache`` the one status cache of the cluster, as every session would find it."""
    adapters.STATUS_CACHES[f"{adapter}:{cluster_id}"] = cache


async def refused(spawner) -> SpawnException:
    with pytest.raises(SpawnException) as info:
        await spawner.validated_options()
    assert info.value.status_code == 400
    return info.value


@pytest.mark.parametrize(
    "options, field",
    [
        ({"app": "jupyter", "runtime": "999:00:00"}, "runtime"),
        ({"app": "jupyter", "prologue": "echo INJECTED"}, "prologue"),
        ({"app": "jupyter", "bc_num_hours": 999}, "bc_num_hours"),
        ({"app": "jupyter", "bc_num_hours": "1\n#SBATCH --time=99:00:00"}, "bc_num_hours"),
        ({"app": "jupyter", "modules": "python; rm -rf ~"}, "modules"),
        ({"app": "jupyter", "bc_queue": "nosuch"}, "bc_queue"),
        ({"app": "nosuch"}, "app"),
        ({"bc_num_hours": 1}, "app"),
        ({"app": "jupyter", "cluster": "nosuch"}, "cluster"),
    ],
)
async def test_refused_options_are_a_400_naming_the_field(clusters_dir, options, field):
    e = await refused(make_spawner(clusters_dir, options))
    assert f"'{field}'" in e.log_message or f"'{field}'" in str(e)


async def test_unknown_field_is_refused_before_the_scheduler_is_asked(clusters_dir, sinfo_calls):
    spawner = make_spawner(clusters_dir, {"app": "jupyter", "runtime": "999:00:00"})
    await refused(spawner)
    assert sinfo_calls == []


async def test_valid_options_get_defaults_and_the_default_partition(clusters_dir, sinfo_calls):
    spawner = make_spawner(clusters_dir, {"app": "jupyter", "bc_num_hours": 2})
    app, cluster, values = await spawner.validated_options()
    assert (app.id, cluster.id) == ("jupyter", "hpc")
    assert sinfo_calls == ["hpc"]
    assert values["bc_num_hours"] == 2 and values["bc_queue"] == "debug"
    assert values["jupyter_ui"] == "lab"


async def test_the_builtin_local_cluster_needs_no_partition_account_or_gpus(tmp_path, sinfo_calls):
    spawner = make_spawner(tmp_path / "empty", {"app": "jupyter", "bc_queue": ""})
    app, cluster, values = await spawner.validated_options()
    assert cluster.id == "local" and cluster.adapter == "local"
    assert values["bc_queue"] is None and values["bc_account"] == ""
    assert values["bc_num_gpus"] == 0
    assert sinfo_calls == []  # no scheduler to ask


@pytest.mark.parametrize(
    "options, field",
    [
        ({"app": "jupyter", "bc_queue": "debug"}, "bc_queue"),
        ({"app": "jupyter", "bc_num_gpus": 1}, "bc_num_gpus"),
        ({"app": "jupyter", "bc_num_hours": 999}, "bc_num_hours"),
        ({"app": "jupyter", "runtime": "1"}, "runtime"),
    ],
)
async def test_the_local_cluster_refuses_what_it_cannot_give(tmp_path, options, field):
    e = await refused(make_spawner(tmp_path / "empty", {**options, "cluster": "local"}))
    assert f"'{field}'" in e.log_message


def test_state_round_trip(clusters_dir):
    spawner = make_spawner(clusters_dir, {})
    spawner.job_id, spawner.cluster_id, spawner.ran_on = "42", "hpc", "n1"
    state = spawner.get_state()
    assert state == {"job_id": "42", "cluster": "hpc", "ran_on": "n1"}
    again = make_spawner(clusters_dir, {})
    again.load_state(state)
    assert (again.job_id, again.cluster_id, again.ran_on) == ("42", "hpc", "n1")
    again.clear_state()
    assert again.get_state() == {}


@pytest.mark.parametrize(
    "text, port",
    [
        ("34567\n", 34567),
        ("80", None),  # privileged ports are refused
        ("70000", None),
        ("34567; ip=10.0.0.1", None),
        ('{"port": 1234, "ip": "evil"}', None),
        ("", None),
    ],
)
async def test_the_port_file_gives_only_a_port(clusters_dir, text, port):
    spawner = make_spawner(clusters_dir, {})
    spawner.job_id = "7"
    spawner.session_dir = lambda: "/home/odt-alice/ondemand/sessions/lab1"
    seen = []

    async def read_as_user(path, tail=None):
        seen.append(path)
        return text

    spawner.read_as_user = read_as_user
    ip_before = spawner.ip
    assert await spawner.read_port() == port
    assert seen == ["/home/odt-alice/ondemand/sessions/lab1/port.7"]
    assert spawner.ip == ip_before


async def test_a_missing_port_file_means_not_yet(clusters_dir):
    spawner = make_spawner(clusters_dir, {})
    spawner.job_id = "7"
    spawner.session_dir = lambda: "/nonexistent"

    async def read_as_user(path, tail=None):
        raise SchedulerUnavailable("cat: No such file or directory")

    spawner.read_as_user = read_as_user
    assert await spawner.read_port() is None


def recording_stage(spawner, answer=None, error=None):
    """Stands in for ``call_stage`` (ondemand-stage itself is tested in test_stage_user_run.py
    and, as root with real accounts, in the integration tests): records each call."""
    calls = []

    async def call_stage(args, stdin=None, timeout=None):
        calls.append((list(args), stdin, timeout))
        if error:
            raise StageCommandError(error)
        return answer or {"returncode": 0, "stdout": "", "stderr": ""}

    spawner.call_stage = call_stage
    return calls


async def test_commands_run_as_the_user_through_ondemand_stage(clusters_dir):
    spawner = make_spawner(clusters_dir, {})
    calls = recording_stage(spawner)
    env = {"PATH": "/x", "SLURM_CONF": "/etc/slurm/c.conf", "JUPYTERHUB_API_TOKEN": "secret"}
    await spawner.run_as_user(["cat", "--", "/f"], env, 29.5, stdin=b"script")
    ((args, stdin, timeout),) = calls
    assert args == ["user", "run", "--user", "odt-alice", "--timeout=30", "--"] + [
        shutil.which("cat"),
        "--",
        "/f",
    ]
    # the token goes on stdin, never on the command line; PATH is the helper's own
    assert stdin == {
        "env": {"SLURM_CONF": "/etc/slurm/c.conf", "JUPYTERHUB_API_TOKEN": "secret"},
        "input": "script",
    }
    assert timeout == 40  # the helper's own limit first


async def test_a_failing_program_is_scheduler_unavailable_with_its_last_line(clusters_dir):
    spawner = make_spawner(clusters_dir, {})
    recording_stage(spawner, {"returncode": 1, "stdout": "", "stderr": "a\nsbatch: error: X\n"})
    with pytest.raises(SchedulerUnavailable, match="^sbatch: error: X$"):
        await spawner.run_as_user(["/usr/bin/sbatch"], {}, 30)


async def test_a_refused_account_gets_a_clear_403_before_anything_is_made(clusters_dir):
    spawner = make_spawner(clusters_dir, {"app": "jupyter"})
    refusal = "user 'odt-alice' is a system account: it has uid 1, below min_uid 1000"
    calls = recording_stage(spawner, error=refusal)
    spawner.submit = lambda *a: pytest.fail("submitted for a refused account")
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.status_code == 403
    assert info.value.log_message == f"Sessions are refused for 'odt-alice': {refusal}"
    assert [args for args, _, _ in calls] == [["user", "check", "--user", "odt-alice"]]


async def test_a_broken_helper_is_not_called_a_refused_account(clusters_dir):
    spawner = make_spawner(clusters_dir, {"app": "jupyter"})
    recording_stage(spawner, error="sudo: a password is required")
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.status_code == 503
    assert info.value.log_message == (
        "The portal cannot start sessions now: sudo: a password is required"
    )


def test_batchspawner_port_handler_is_not_registered():
    from jupyterhub import apihandlers

    assert not any("batchspawner" in str(h[0]) for h in apihandlers.default_handlers)


def test_portal_spawner_dispatches_on_the_server_name():
    user = SimpleNamespace(name="odt-alice")
    default = PortalSpawner(user=user, orm_spawner=SimpleNamespace(name="", server=None))
    assert type(default) is PUNSpawner
    session = PortalSpawner(user=user, orm_spawner=SimpleNamespace(name="lab1", server=None))
    assert type(session) is SlurmSessionSpawner and session.name == "lab1"


@pytest.mark.parametrize(
    "jobs, fail, expected",
    [
        ({"42": JobStatus("42", "PENDING")}, False, None),
        ({"42": JobStatus("42", "RUNNING", node="n1")}, False, None),
        ({"42": JobStatus("42", "COMPLETED")}, False, 1),
        ({"42": JobStatus("42", "CANCELLED")}, False, 1),
        ({}, False, 1),  # not listed any more: gone
        ({}, True, None),  # squeue failed: unknown, never gone
    ],
)
async def test_poll_reads_the_shared_cache(clusters_dir, jobs, fail, expected):
    async def query():
        if fail:
            raise SchedulerUnavailable("Unable to contact slurm controller")
        return jobs

    spawner = make_spawner(clusters_dir, {})
    spawner.job_id, spawner.cluster_id = "42", "hpc"
    share_cache("hpc", StatusCache(query, interval=0))
    assert await spawner.poll() == expected


@pytest.mark.parametrize(
    "job, ran_on, expected, cancelled",
    [
        # its server was up on n2; the node stopped responding and Slurm requeued the job
        (JobStatus("42", "PENDING", reason="BeginTime"), "n2", 1, ["42"]),
        # queued, never up (a spawn re-adopted after a restart): alive
        (JobStatus("42", "PENDING", reason="Priority"), "", None, []),
        (JobStatus("42", "RUNNING", node="n2"), "n2", None, []),
        (None, "n2", None, []),  # squeue failed: unknown, never gone
    ],
)
async def test_poll_ends_a_session_whose_job_was_requeued(
    clusters_dir, monkeypatch, job, ran_on, expected, cancelled
):
    async def query():
        if job is None:
            raise SchedulerUnavailable("Unable to contact slurm controller")
        return {"42": job}

    calls = []

    async def cancel(self, job_id, wait=True):  # fake scancel: the job exists only in query()
        calls.append(job_id)

    monkeypatch.setattr(slurm_adapter.SlurmAdapter, "cancel", cancel)
    spawner = make_spawner(clusters_dir, {})
    spawner.job_id, spawner.cluster_id, spawner.ran_on = "42", "hpc", ran_on
    share_cache("hpc", StatusCache(query, interval=0))
    assert await spawner.poll() == expected
    assert calls == cancelled


def test_one_status_cache_per_cluster_for_all_sessions(clusters_dir):
    a, b = make_spawner(clusters_dir, {}, "lab1"), make_spawner(clusters_dir, {}, "lab2")
    cluster = a.cluster(None)
    cache = a.adapter_for(cluster).status_cache()
    assert b.adapter_for(cluster).status_cache() is cache
    assert adapters.STATUS_CACHES == {"slurm:hpc": cache}


async def test_a_broken_clusters_d_makes_a_saved_job_unknown_not_gone(tmp_path):
    d = tmp_path / "clusters.d"
    d.mkdir()
    (d / "hpc.yml").write_text("v2:\n  job:\n    adapter: pbs\n")  # refused: no cluster left
    spawner = make_spawner(d, {})
    spawner.load_state({"job_id": "42", "cluster": "hpc"})
    assert await spawner.poll() is None
    assert (await spawner._progress_event())["progress"] == 20


class FakeSlurmRunner:
    """A fake of Slurm's commands (no controller can be made to time out on cue): stands in for
    ``ondemand_hub.scheduler.slurm_adapter.run_command`` and ondemand-stage's ``user run``,
    records every argv and
    answers ``sbatch`` with ``sbatch_error`` (a SchedulerUnavailable) or a job id, and the
    job-name ``squeue`` lookup with ``listed`` (one answer per call, the last one repeated)."""

    def __init__(self, sbatch_error=None, listed=("",)):
        self.sbatch_error = sbatch_error
        self.listed = list(listed)
        self.calls: list[list[str]] = []

    def count(self, command: str) -> int:
        return sum(1 for argv in self.calls if command in map(os.path.basename, argv))

    async def __call__(self, argv, env, timeout=30.0, stdin=None):
        argv = list(argv)
        self.calls.append(argv)
        if argv[0].endswith("sbatch"):
            if self.sbatch_error:
                raise SchedulerUnavailable(self.sbatch_error)
            return "101\n"
        if "squeue" in argv:
            return self.listed.pop(0) if len(self.listed) > 1 else self.listed[0]
        return ""  # install -d


def stage_runs_with(spawner, runner):
    """``call_stage`` answering ``user run`` with ``runner(argv, env, timeout, stdin)``, as
    ondemand-stage would with the program's exit code and output."""

    async def call_stage(args, stdin=None, timeout=None):
        argv = args[args.index("--") + 1 :]
        data = stdin["input"].encode() if stdin["input"] else None
        try:
            out = await runner(argv, stdin["env"], timeout=timeout, stdin=data)
        except SchedulerUnavailable as e:
            return {"returncode": 1, "stdout": "", "stderr": str(e)}
        return {"returncode": 0, "stdout": out, "stderr": ""}

    spawner.call_stage = call_stage


def submitting_spawner(clusters_dir, monkeypatch, runner):
    monkeypatch.setattr(slurm_adapter, "run_command", runner)
    spawner = make_spawner(clusters_dir, {"app": "jupyter"})
    stage_runs_with(spawner, runner)
    spawner.session_dir = lambda: "/home/odt-alice/ondemand/sessions/lab1"
    spawner.get_env = lambda: {
        "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/odt-alice/lab1/",
        "JUPYTERHUB_API_TOKEN": "secret",
    }
    return spawner


async def submit(spawner):
    app, cluster, values = await spawner.validated_options()
    return await spawner.submit(app, cluster, values)


async def test_a_timed_out_sbatch_whose_job_exists_adopts_it_and_submits_once(
    clusters_dir, monkeypatch
):
    runner = FakeSlurmRunner("sbatch timed out after 30.0 s", listed=["", "555\n"])
    spawner = submitting_spawner(clusters_dir, monkeypatch, runner)
    spawner.submit_lookups = 3
    assert await submit(spawner) == "555"
    assert runner.count("sbatch") == 1  # never submitted twice
    lookup = [argv for argv in runner.calls if "squeue" in argv][0]
    assert lookup[lookup.index("-n") + 1] == "ondemand-jupyter-lab1"
    assert lookup[lookup.index("-u") + 1] == "odt-alice"


async def test_a_timed_out_sbatch_without_a_job_fails_and_does_not_resubmit(
    clusters_dir, monkeypatch
):
    runner = FakeSlurmRunner("Batch job submission failed: Socket timed out on send/recv")
    spawner = submitting_spawner(clusters_dir, monkeypatch, runner)
    spawner.submit_lookups = 2
    with pytest.raises(SpawnException) as info:
        await submit(spawner)
    assert info.value.status_code == 503 and "timed out" in info.value.log_message
    assert runner.count("sbatch") == 1 and runner.count("squeue") == 2


async def test_a_refused_submission_is_not_looked_up(clusters_dir, monkeypatch):
    runner = FakeSlurmRunner("Batch job submission failed: Invalid account")
    spawner = submitting_spawner(clusters_dir, monkeypatch, runner)
    with pytest.raises(SpawnException):
        await submit(spawner)
    assert runner.count("squeue") == 0


async def test_a_good_sbatch_is_one_call(clusters_dir, monkeypatch):
    runner = FakeSlurmRunner()
    spawner = submitting_spawner(clusters_dir, monkeypatch, runner)
    assert await submit(spawner) == "101"
    assert runner.count("sbatch") == 1 and runner.count("squeue") == 0


def restarted_spawner(clusters_dir, monkeypatch, states):
    """A spawner as JupyterHub rebuilds it at startup: state loaded, server from the DB; the
    scheduler answers ``states`` one query after another."""
    answers = list(states)

    async def query():
        return {"42": answers.pop(0) if len(answers) > 1 else answers[0]}

    spawner = make_spawner(clusters_dir, {})
    spawner.load_state({"job_id": "42", "cluster": "hpc"})
    stored = SimpleNamespace(url="http://127.0.0.1:49999/user/odt-alice/lab1/")
    monkeypatch.setattr(SlurmSessionSpawner, "server", property(lambda self: stored))
    share_cache("hpc", StatusCache(query, interval=0))
    return spawner


async def test_a_spawn_pending_across_a_restart_is_readopted(clusters_dir, monkeypatch):
    monkeypatch.setattr("asyncio.sleep", _no_sleep)
    spawner = restarted_spawner(
        clusters_dir,
        monkeypatch,
        [JobStatus("42", "PENDING"), JobStatus("42", "RUNNING", node="n1")],
    )

    async def read_port():
        return 40123

    spawner.read_port = read_port
    assert await spawner.poll() is None  # queued: alive, so JupyterHub asks get_url()
    assert await spawner.get_url() == "http://n1:40123/user/odt-alice/lab1/"


async def test_a_job_that_ends_during_readoption_keeps_the_stored_url(clusters_dir, monkeypatch):
    monkeypatch.setattr("asyncio.sleep", _no_sleep)
    spawner = restarted_spawner(clusters_dir, monkeypatch, [JobStatus("42", "FAILED")])
    spawner.persist_state = lambda: None

    async def log_tail():
        return "boom"

    spawner.log_tail = log_tail
    assert await spawner.get_url() == "http://127.0.0.1:49999/user/odt-alice/lab1/"
    assert spawner.job_id == ""


_real_sleep = __import__("asyncio").sleep


async def _no_sleep(seconds, *args):
    await _real_sleep(0)


# --- the local cluster ------------------------------------------------------------------------


class FakeLocalRunner:
    """A fake of ondemand-stage's ``user run`` for a local session (the real start is
    tests/integration/test_local_sessions.py): records argv, stdin and environment, and answers
    the start command with ``answer``."""

    def __init__(self, answer="local:4242:910956\n"):
        self.answer = answer
        self.calls: list[tuple[list[str], dict, bytes | None]] = []

    async def __call__(self, argv, env, timeout=30.0, stdin=None):
        self.calls.append((list(argv), dict(env), stdin))
        if "start" in argv:
            return self.answer
        if "stop" in argv:
            return "stopped\n"
        return ""  # install -d


def local_spawner(tmp_path, monkeypatch, runner, options=None):
    spawner = make_spawner(tmp_path / "empty", options or {"app": "jupyter", "bc_num_hours": 2})
    stage_runs_with(spawner, runner)
    spawner.session_dir = lambda: "/home/odt-alice/ondemand/sessions/lab1"
    spawner.python_command = "/venv/bin/python"
    spawner.get_env = lambda: {
        "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/odt-alice/lab1/",
        "JUPYTERHUB_API_TOKEN": "secret",
        "NOT_PASSED": "x",
    }
    return spawner


async def test_a_local_session_starts_as_the_user_with_the_token_on_stdin(tmp_path, monkeypatch):
    runner = FakeLocalRunner()
    spawner = local_spawner(tmp_path, monkeypatch, runner)
    assert await submit(spawner) == "local:4242:910956"
    (mkdir, _, _), (argv, env, stdin) = runner.calls
    assert mkdir == [shutil.which("install"), "-d", "-m", "0700", "--", spawner.session_dir()]
    assert argv == [
        "/venv/bin/python",
        "-I",
        "-m",
        "ondemand_hub.scheduler.local",
        "start",
        "--session-dir=/home/odt-alice/ondemand/sessions/lab1",
        "--walltime=7200",  # bc_num_hours 2
        "--grace=5",
    ]
    assert "secret" not in " ".join(argv) and "secret" not in env.values()
    data = json.loads(stdin)
    assert data["env"] == {
        "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/odt-alice/lab1/",
        "JUPYTERHUB_API_TOKEN": "secret",
    }
    assert "secret" not in data["script"]
    assert "/venv/bin/python -I -m ondemand_hub.launcher " in data["script"]
    assert data["script"].rstrip().endswith('server 127.0.0.1 --ServerApp.root_dir="$HOME"')


@pytest.mark.parametrize("answer", ["", "4242\n", "local:4242:9 ; rm -rf ~\n"])
async def test_a_local_start_without_a_job_id_fails(tmp_path, monkeypatch, answer):
    spawner = local_spawner(tmp_path, monkeypatch, FakeLocalRunner(answer))
    with pytest.raises(SpawnException) as info:
        await submit(spawner)
    assert info.value.status_code == 503


def own_job_id(offset=0) -> str:
    from ondemand_hub.scheduler.local import make_job_id, read_stat

    return make_job_id(os.getpid(), read_stat(os.getpid()).start_time + offset)


async def test_poll_of_a_local_session_reads_proc(tmp_path):
    spawner = make_spawner(tmp_path / "empty", {})
    spawner.load_state({"job_id": own_job_id(), "cluster": "local"})
    assert await spawner.poll() is None  # alive
    spawner.load_state({"job_id": own_job_id(offset=1), "cluster": "local"})
    assert await spawner.poll() == 1  # the pid is someone else's now: gone


async def test_a_local_session_is_known_by_its_id_even_on_a_slurm_only_portal(
    clusters_dir, monkeypatch
):
    spawner = make_spawner(clusters_dir, {})
    spawner.load_state({"job_id": own_job_id(), "cluster": "local"})
    monkeypatch.setattr(SlurmAdapter, "status", lambda *a: pytest.fail("squeue asked"))
    assert await spawner.poll() is None
    assert type(spawner.job_adapter) is LocalAdapter


async def test_a_local_session_is_read_from_proc_even_with_a_broken_clusters_d(tmp_path):
    d = tmp_path / "clusters.d"
    d.mkdir()
    (d / "hpc.yml").write_text("v2:\n  job:\n    adapter: pbs\n")  # refused: no cluster left
    spawner = make_spawner(d, {})
    spawner.load_state({"job_id": own_job_id(), "cluster": "local"})
    assert await spawner.poll() is None  # alive (not "unknown")
    spawner.load_state({"job_id": own_job_id(offset=1), "cluster": "local"})
    assert await spawner.poll() == 1


async def test_a_local_session_is_stopped_as_the_user(tmp_path, monkeypatch):
    runner = FakeLocalRunner()
    spawner = local_spawner(tmp_path, monkeypatch, runner)
    spawner.load_state({"job_id": "local:4242:910956", "cluster": "local"})
    spawner.persist_state = lambda: None
    await spawner.stop()
    ((argv, _env, _stdin),) = runner.calls
    assert argv == [
        "/venv/bin/python",
        "-I",
        "-m",
        "ondemand_hub.scheduler.local",
        "stop",
        "local:4242:910956",
        "--grace=5",
    ]
    assert spawner.get_state() == {}


async def test_a_local_session_is_readopted_after_a_restart(tmp_path, monkeypatch):
    spawner = make_spawner(tmp_path / "empty", {})
    spawner.load_state({"job_id": own_job_id(), "cluster": "local"})
    stored = SimpleNamespace(url="http://127.0.0.1:49999/user/odt-alice/lab1/")
    monkeypatch.setattr(SlurmSessionSpawner, "server", property(lambda self: stored))

    async def read_port():
        return 40123

    spawner.read_port = read_port
    assert await spawner.get_url() == "http://127.0.0.1:40123/user/odt-alice/lab1/"


async def test_a_local_session_that_exits_early_fails_with_its_output(tmp_path):
    spawner = make_spawner(tmp_path / "empty", {})
    spawner.load_state({"job_id": own_job_id(offset=1), "cluster": "local"})
    spawner.persist_state = lambda: None

    async def log_tail():
        return "boom: module not found"

    spawner.log_tail = log_tail
    with pytest.raises(SpawnException) as info:
        await spawner._wait_for_server(spawner.adapter_of_job())
    message = info.value.log_message
    assert "before its server was up" in message and "boom: module not found" in message
    assert spawner.job_id == ""


async def test_local_progress_talks_about_the_portal_host(tmp_path):
    spawner = make_spawner(tmp_path / "empty", {})
    assert (await spawner._progress_event())["message"] == (
        "Checking the form and submitting the job"  # the cluster is not known yet
    )
    spawner.job_adapter = spawner.adapter_for(spawner.cluster("local"))
    assert "starting the app" in (await spawner._progress_event())["message"]
    spawner.job_id = own_job_id()
    assert "on the portal host" in (await spawner._progress_event())["message"]
    spawner.phase = "waiting"
    event = await spawner._progress_event()
    assert event["progress"] == 80 and "waiting for its server" in event["message"]


def pending(job_id, priority, partition="debug", reason="Priority", start=""):
    return JobStatus(
        job_id=job_id,
        state="PENDING",
        reason=reason,
        partition=partition,
        start_time=start,
        priority=priority,
    )


async def test_progress_of_a_queued_job_gives_its_place_reason_and_expected_start(clusters_dir):
    """The progress page's message comes from the shared squeue answer: no extra call."""
    jobs = {
        "10": JobStatus(job_id="10", state="RUNNING", partition="debug", node="vm"),
        "11": pending("11", 200, reason="Resources", start="2026-11-23T02:00:00"),
        "12": pending("12", 100, start="2026-11-23T03:00:00"),
        "13": pending("13", 100, partition="batch"),
    }

    async def query():
        return jobs

    spawner = make_spawner(clusters_dir, {})
    share_cache("hpc", StatusCache(query, 60))
    spawner.cluster_id = "hpc"
    spawner.job_id = "12"
    event = await spawner._progress_event()
    assert event == {
        "progress": 30,
        "message": "Job 12 is queued in debug, number 2 in line: other jobs are ahead of it "
        "in the queue. Expected start: 2026-11-23 03:00:00.",
    }
    spawner.job_id = "11"
    assert (await spawner._progress_event())["message"] == (
        "Job 11 is queued in debug, next in line: waiting for CPUs, memory or GPUs to free up. "
        "Expected start: 2026-11-23 02:00:00."
    )
    spawner.job_id = "10"
    assert (await spawner._progress_event())["message"] == "Job 10 is starting on vm"
    assert adapters.STATUS_CACHES["slurm:hpc"].calls == 1


async def test_a_timed_out_sbatch_never_adopts_an_older_job_of_the_same_name(
    clusters_dir, monkeypatch
):
    """A server name used again through the REST API: the job still listed from its first use
    (submitted long before this sbatch) is not this submission's."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    runner = FakeSlurmRunner(
        "sbatch timed out after 30.0 s", listed=[f"444|2020-01-01T00:00:00\n777|{now}\n"]
    )
    spawner = submitting_spawner(clusters_dir, monkeypatch, runner)
    spawner.submit_lookups = 1
    assert await submit(spawner) == "777"
    runner.listed = ["444|2020-01-01T00:00:00\n"]
    with pytest.raises(SpawnException):
        await submit(spawner)
    assert runner.count("sbatch") == 2


async def test_a_job_that_ended_early_fails_the_spawn_saying_how(clusters_dir, monkeypatch):
    """The error names the job and how it ended, from scontrol (here a fake of it: the
    captured output of a real failed job), with the job's own output."""
    data = REPO / "tests" / "unit" / "data" / "slurm"

    async def runner(argv, env, timeout=30.0, stdin=None):
        assert argv == ["scontrol", "show", "job", "-o", "8"]
        return (data / "scontrol_job_failed.txt").read_text()

    async def query():
        return {"8": JobStatus(job_id="8", state="FAILED")}

    async def log_tail():
        return "ImportError: no module named jupyterlab"

    monkeypatch.setattr(slurm_adapter, "run_command", runner)
    share_cache("hpc", StatusCache(query, interval=0))
    spawner = make_spawner(clusters_dir, {})
    spawner.load_state({"job_id": "8", "cluster": "hpc"})
    spawner.persist_state = lambda: None
    spawner.log_tail = log_tail
    with pytest.raises(SpawnException) as info:
        await spawner._wait_for_server(spawner.adapter_of_job())
    assert info.value.log_message == (
        "The job 8 ended before its server was up: failed, exit code 3. Last lines of "
        "output.log:\nImportError: no module named jupyterlab"
    )
    assert spawner.get_state() == {}
