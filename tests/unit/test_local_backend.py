"""The local cluster's pure parts: job ids that a recycled pid cannot fake, the session's state
read from /proc (alive, gone, unknown), the process tree, the argv and input of the commands
the hub runs as the user, the session's clean environment, and the launcher binding where it
is told. The real processes are exercised by tests/integration/test_local_sessions.py."""

import json
import os
import pwd
from pathlib import Path

import pytest

from ondemand_hub.scheduler import local
from ondemand_hub.scheduler.local import (
    LocalSessionError,
    LocalStatus,
    ProcStat,
    descendants,
    make_job_id,
    make_session_env,
    make_start_argv,
    make_start_input,
    make_stop_argv,
    parse_job_id,
    parse_stat,
    process_status,
    read_stat,
)
from ondemand_hub.site.clusters import ClusterError, parse_cluster

# A real line of /proc/<pid>/stat, with a command name that holds ") (" and spaces.
STAT = (
    "4242 (my (odd) prog) S 4240 4242 4242 0 -1 4194560 1003 0 0 0 5 2 0 0 20 0 1 0 "
    "910956 12345678 2345 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0"
)


def test_parse_stat_counts_fields_after_the_last_parenthesis():
    assert parse_stat(STAT) == ProcStat(
        pid=4242, state="S", ppid=4240, pgrp=4242, session=4242, start_time=910956
    )


@pytest.mark.parametrize("text", ["", "4242 no parenthesis", "4242 (x) S 1 2"])
def test_parse_stat_refuses_what_is_not_a_stat_line(text):
    with pytest.raises(ValueError):
        parse_stat(text)


def test_job_id_round_trip():
    assert make_job_id(4242, 910956) == "local:4242:910956"
    assert parse_job_id("local:4242:910956") == (4242, 910956)


@pytest.mark.parametrize(
    "job_id",
    ["4242", "local:0:5", "local:-1:5", "local:12:abc", "local:12:34\n", "local:1:2:3", ""],
)
def test_anything_else_is_not_a_local_job_id(job_id):
    with pytest.raises(ValueError):
        parse_job_id(job_id)
    with pytest.raises(ValueError):
        make_stop_argv("/venv/bin/python", job_id, 5)


def fake_proc(tmp_path: Path, *stats: str) -> str:
    for line in stats:
        d = tmp_path / line.split()[0]
        d.mkdir()
        (d / "stat").write_text(line)
    return str(tmp_path)


def stat_line(pid: int, state: str = "S", ppid: int = 1, start: int = 910956) -> str:
    return f"{pid} (python) {state} {ppid} {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 1 2"


@pytest.mark.parametrize(
    "line, state",
    [
        (stat_line(4242), "RUNNING"),
        (stat_line(4242, "R"), "RUNNING"),
        (stat_line(4242, "Z"), "EXITED"),  # a zombie nobody reaps is dead
        (stat_line(4242, start=111), "EXITED"),  # the pid now belongs to a later process
        (stat_line(4243), "EXITED"),  # no process 4242 at all
    ],
)
def test_process_status_from_proc(tmp_path, line, state):
    status = process_status("local:4242:910956", fake_proc(tmp_path, line))
    assert status is not None and status.state == state
    assert status.is_running == (state == "RUNNING")
    assert not status.is_pending
    if status.is_running:
        assert status.node == "127.0.0.1"


def test_an_unreadable_proc_is_unknown_never_gone(tmp_path):
    (tmp_path / "4242" / "stat").mkdir(parents=True)  # reading it fails with an OSError
    assert process_status("local:4242:910956", str(tmp_path)) is None


def test_a_malformed_job_id_is_gone_not_unknown(tmp_path):
    status = process_status("local:x", str(tmp_path))
    assert status is not None and status.state == "EXITED"


async def test_this_very_process_is_running():
    stat = read_stat(os.getpid())
    job_id = make_job_id(os.getpid(), stat.start_time)
    status = await LocalStatus().status(job_id)
    assert status.state == "RUNNING"
    assert (await LocalStatus().status(make_job_id(os.getpid(), stat.start_time + 1))).state == (
        "EXITED"
    )


def test_descendants_follow_reparented_and_new_session_children():
    table = [
        ProcStat(10, "S", 1, 10, 10, 0),  # the supervisor
        ProcStat(11, "S", 10, 10, 10, 0),  # bash
        ProcStat(12, "S", 11, 10, 10, 0),  # jupyter
        ProcStat(13, "S", 12, 13, 13, 0),  # a kernel in its own session
        ProcStat(14, "S", 10, 14, 14, 0),  # an orphan the subreaper took over
        ProcStat(15, "Z", 14, 14, 14, 0),
        ProcStat(20, "S", 1, 20, 20, 0),  # someone else
    ]
    assert descendants(10, table) == [11, 14, 12, 15, 13]
    assert descendants(20, table) == []


def test_descendants_survive_a_loop_in_a_racy_table():
    table = [ProcStat(11, "S", 12, 0, 0, 0), ProcStat(12, "S", 11, 0, 0, 0)]
    assert descendants(11, table) == [12]


def test_start_and_stop_argv():
    python = "/opt/ondemand-hub/venv/bin/python"
    assert make_start_argv(python, "/home/a/ondemand/sessions/s1", 3600, 5) == [
        python,
        "-I",
        "-m",
        "ondemand_hub.scheduler.local",
        "start",
        "--session-dir=/home/a/ondemand/sessions/s1",
        "--walltime=3600",
        "--grace=5",
    ]
    assert make_stop_argv(python, "local:42:7", 5) == [
        python,
        "-I",
        "-m",
        "ondemand_hub.scheduler.local",
        "stop",
        "local:42:7",
        "--grace=5",
    ]


@pytest.mark.parametrize("walltime", [0, -1, True, 1.5, "3600"])
def test_a_session_always_has_a_walltime(walltime):
    with pytest.raises(LocalSessionError):
        make_start_argv("/venv/bin/python", "/home/a/s", walltime, 5)


def test_start_input_holds_the_script_and_only_the_hub_variables():
    env = {"JUPYTERHUB_API_TOKEN": "secret", "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/"}
    data = json.loads(make_start_input("#!/bin/bash\necho hi\n", env))
    assert data == {"script": "#!/bin/bash\necho hi\n", "env": env}


@pytest.mark.parametrize(
    "env",
    [
        {"LD_PRELOAD": "/tmp/x.so"},
        {"PATH": "/tmp"},
        {"JUPYTERHUB_API_TOKEN": "a\nLD_PRELOAD=/tmp/x.so"},
        {"JUPYTERHUB_X": "\0"},
        {"jupyterhub_api_token": "x"},
    ],
)
def test_nothing_else_is_passed_to_a_session(env):
    with pytest.raises(LocalSessionError):
        make_start_input("", env)


def test_the_session_environment_is_clean(monkeypatch):
    monkeypatch.setenv("HUB_SECRET", "not for sessions")
    account = pwd.struct_passwd(("ann", "x", 1001, 1001, "", "/home/ann", "/bin/zsh"))
    env = make_session_env(account, {"JUPYTERHUB_API_TOKEN": "t"}, "local:42:7")
    assert env == {
        "HOME": "/home/ann",
        "USER": "ann",
        "LOGNAME": "ann",
        "SHELL": "/bin/zsh",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "JUPYTERHUB_API_TOKEN": "t",
        "ONDEMAND_HUB_JOB_ID": "local:42:7",
    }


def test_start_refuses_root(monkeypatch):
    monkeypatch.setattr(os, "getuid", lambda: 0)
    with pytest.raises(LocalSessionError, match="never run as root"):
        local.start("/tmp", 60, 5)


@pytest.mark.parametrize("key", ["bin: /usr/bin", "conf: /etc/slurm/slurm.conf", "cluster: c1"])
def test_a_local_cluster_refuses_slurm_settings_rather_than_ignore_them(key):
    text = f"v2:\n  job:\n    adapter: local\n    {key}\n"
    with pytest.raises(ClusterError, match=f"v2.job.{key.split(':')[0]}.*only for adapter slurm"):
        parse_cluster(Path("portal.yml"), text)
