"""SlurmSessionSpawner without a hub or a scheduler: option validation (400 naming the field,
before anything is submitted), state round-trip, the port file accepting only a port, and the
PortalSpawner dispatch by server name."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.spawner import SpawnException

from ondemand_hub.scheduler.slurm import Partition
from ondemand_hub.scheduler.status import JobStatus, SchedulerUnavailable, StatusCache
from ondemand_hub.spawners.pun import PUNSpawner
from ondemand_hub.spawners.session import LAUNCHER, PortalSpawner, SlurmSessionSpawner

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


def make_spawner(clusters_dir, options, name="lab1"):
    spawner = SlurmSessionSpawner(
        user=SimpleNamespace(name="odt-alice"),
        orm_spawner=SimpleNamespace(name=name, server=None),
        app_dirs=[str(REPO / "apps")],
        clusters_dir=str(clusters_dir),
        user_options=options,
    )
    spawner.sinfo_calls = 0

    async def partitions(cluster):
        spawner.sinfo_calls += 1
        return PARTITIONS

    spawner.partitions = partitions
    return spawner


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


async def test_unknown_field_is_refused_before_the_scheduler_is_asked(clusters_dir):
    spawner = make_spawner(clusters_dir, {"app": "jupyter", "runtime": "999:00:00"})
    await refused(spawner)
    assert spawner.sinfo_calls == 0


async def test_valid_options_get_defaults_and_the_default_partition(clusters_dir):
    spawner = make_spawner(clusters_dir, {"app": "jupyter", "bc_num_hours": 2})
    app, cluster, values = await spawner.validated_options()
    assert (app.id, cluster.id) == ("jupyter", "hpc")
    assert values["bc_num_hours"] == 2 and values["bc_queue"] == "debug"
    assert values["jupyter_ui"] == "lab"


async def test_the_local_cluster_is_not_offered_yet(tmp_path):
    spawner = make_spawner(tmp_path / "empty", {"app": "jupyter"})
    e = await refused(spawner)
    assert "portal host" in str(e.log_message)


def test_state_round_trip(clusters_dir):
    spawner = make_spawner(clusters_dir, {})
    spawner.job_id, spawner.cluster_id = "42", "hpc"
    state = spawner.get_state()
    assert state == {"job_id": "42", "cluster": "hpc"}
    again = make_spawner(clusters_dir, {})
    again.load_state(state)
    assert (again.job_id, again.cluster_id) == ("42", "hpc")
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


def test_commands_run_as_the_user(clusters_dir):
    spawner = make_spawner(clusters_dir, {})
    assert spawner.as_user("scancel", "5") == ["runuser", "-u", "odt-alice", "--", "scancel", "5"]
    spawner.submit_prefix = ["sudo", "-n", "-u", "{username}", "--"]
    assert spawner.as_user("sbatch")[:4] == ["sudo", "-n", "-u", "odt-alice"]


def test_launcher_is_one_line():
    assert "\n" not in LAUNCHER
    compile(LAUNCHER, "<launcher>", "exec")


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
    cache = StatusCache(query, interval=0)
    spawner.status_cache = lambda cluster: cache
    assert await spawner.poll() == expected


def test_one_status_cache_per_cluster_for_all_sessions(clusters_dir):
    a, b = make_spawner(clusters_dir, {}, "lab1"), make_spawner(clusters_dir, {}, "lab2")
    cluster = a.cluster(None)
    assert a.status_cache(cluster) is b.status_cache(cluster)
