"""Sessions on the local cluster end to end: a real hub with no clusters.d (the built-in
``local`` cluster), real accounts, JupyterLab as a process tree of the user on this host.

Lena launches JupyterLab through the REST API, reaches it through the proxy, every process of
it carries her uid, gid and groups and listens on 127.0.0.1 only, the hub's token is in no file
and on no command line, Luke gets 403, and DELETE ends the whole tree (a kernel in its own
session included); a hub restart keeps a running session; an app that exits at once fails the
spawn with its output; the walltime ends the tree (docs/local-cluster.md)."""

import os
import pwd
import shutil
import time
from pathlib import Path

import pytest
import requests

from harness import (
    REPO,
    STAGE,
    VENV_BIN,
    api_token,
    ensure_account,
    failed_progress_message,
    run,
    running_hub,
    server_model,
    session_log_url,
    wait_for,
)
from ondemand_hub.scheduler.local import (
    descendants,
    make_start_argv,
    make_start_input,
    make_stop_argv,
    parse_job_id,
    process_table,
    read_stat,
)

LENA, LUKE = "odt-lena", "odt-luke"
PASSWORDS = {LENA: "Lena-pw-6!", LUKE: "Luke-pw-7!"}
PYTHON = str(VENV_BIN / "python")
SESSIONS = ("lab1", "run1", "boom1", "wall1")
#: What a local session's environment holds besides JUPYTERHUB_* (bash adds PWD, SHLVL...).
SESSION_ENV = {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG", "ONDEMAND_HUB_JOB_ID"}


@pytest.fixture(scope="module")
def local_hub():
    for name, password in PASSWORDS.items():
        ensure_account(name, password)
    tag = f"/var/tmp/ondemand-hub-test-{os.getpid()}-local"
    clusters = Path(f"{tag}-clusters.d")  # empty: the built-in local cluster is the default
    clusters.mkdir(exist_ok=True)
    apps = Path(f"{tag}-apps")
    shutil.rmtree(apps, ignore_errors=True)
    shutil.copytree(REPO / "apps", apps)
    boom = apps / "boom"
    shutil.copytree(REPO / "apps" / "jupyter", boom)
    (boom / "script.sh.j2").write_text(
        '#!/bin/bash\necho "boom: module not found ({{ app_id }})" >&2\nexit 1\n'
    )
    (boom / "manifest.yml").write_text("title: Boom\ndescription: fails at once\n")
    env = {"ONDEMAND_HUB_CLUSTERS_DIR": str(clusters), "ONDEMAND_HUB_BUNDLED_APPS": str(apps)}
    try:
        with running_hub("local-sessions", env=env) as hub:
            yield hub
    finally:
        for name in SESSIONS:  # a failed test may leave its session running: end it, by id
            try:
                job_id = job_id_of(name)
            except (OSError, IndexError, StopIteration):
                continue
            run("runuser", "-u", LENA, "--", *make_stop_argv(PYTHON, job_id, 1), check=False)
        for name in PASSWORDS:
            run(STAGE, "pun", "stop", "--user", name, check=False)
        shutil.rmtree(clusters, ignore_errors=True)
        shutil.rmtree(apps, ignore_errors=True)


@pytest.fixture(scope="module")
def lena(local_hub):
    s, reply = local_hub.login(LENA, PASSWORDS[LENA])
    assert reply.status_code == 302, local_hub.log_tail()
    return s, api_token(local_hub, s, LENA, "test_local_sessions")


# --- helpers -----------------------------------------------------------------------------------


def launch(hub, token, name, **options) -> requests.Response:
    return requests.post(
        f"{hub.url}/hub/api/users/{LENA}/servers/{name}",
        json={"user_options": {"app": "jupyter", "cluster": "local", **options}},
        headers=token,
        timeout=30,
    )


def session_dir(name: str) -> Path:
    return Path(f"/home/{LENA}/ondemand/sessions/{name}")


def job_id_of(name: str) -> str:
    """The session's job id, from the supervisor's first line in output.log."""
    first = (session_dir(name) / "output.log").read_text().splitlines()[0]
    return next(word for word in first.split() if word.startswith("local:"))


def alive(pid: int, start_time: int | None = None) -> bool:
    stat = read_stat(pid)
    ok = stat is not None and stat.alive
    return ok and (start_time is None or stat.start_time == start_time)


def tree(job_id: str) -> list[int]:
    """The supervisor and every live process below it."""
    pid, _ = parse_job_id(job_id)
    return [p for p in [pid, *descendants(pid, process_table())] if alive(p)]


def settled_tree(job_id: str) -> list[int]:
    """The session's long-lived processes: the tree once two looks 0.5 s apart agree (a
    starting server runs short helpers, e.g. jupyter-lsp's `npm prefix`)."""

    def settled():
        first = tree(job_id)
        time.sleep(0.5)
        return first if tree(job_id) == first else None

    return wait_for(settled, 20, "the process tree settles")


def ids(pid: int) -> dict:
    """Real, effective, saved and fs uid and gid, and groups, of a process."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return {
        "uids": set(map(int, fields["Uid"])),
        "gids": set(map(int, fields["Gid"])),
        "groups": sorted(map(int, fields["Groups"])),
    }


def listening(pids: list[int]) -> list[str]:
    """``address:port`` (hex, as /proc/net/tcp* shows them) of every TCP socket in LISTEN
    state that one of ``pids`` holds."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except FileNotFoundError:
            continue
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                found.append(f[1])
    return found


def loopback(address: str) -> bool:
    host = address.split(":")[0]
    return host in ("0100007F", "0000000000000000FFFF00000100007F")


def reach(s, base) -> int:
    r = s.get(session_log_url(base), timeout=30)
    assert r.status_code == 200 and "ondemand-hub: starting" in r.text, (r.status_code, r.url)
    r = s.get(f"{base}/api/status", timeout=30)
    assert r.url == f"{base}/api/status", r.url
    return r.status_code


def delete(hub, token, name) -> None:
    r = requests.delete(f"{hub.url}/hub/api/users/{LENA}/servers/{name}", headers=token, timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: not server_model(hub, token, LENA, name), 30, f"{name} stopped", hub)


# --- tests ---------------------------------------------------------------------------------------


def test_a_partition_on_the_local_cluster_is_a_400_and_starts_nothing(local_hub, lena):
    _s, token = lena
    r = launch(local_hub, token, "bad1", bc_queue="debug")
    assert r.status_code == 400, r.text
    assert "'bc_queue'" in r.json()["message"]
    assert not session_dir("bad1").exists()


def test_lena_runs_jupyterlab_locally_luke_cannot_delete_ends_the_whole_tree(local_hub, lena):
    hub = local_hub
    s, token = lena
    started = time.monotonic()
    r = launch(hub, token, "lab1", bc_num_hours=1)
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: server_model(hub, token, LENA, "lab1").get("ready"), 60, "ready", hub)
    print(f"local session submit -> ready: {time.monotonic() - started:.2f} s")

    folder = session_dir("lab1")
    assert folder.owner() == LENA and folder.stat().st_mode & 0o777 == 0o700
    job_id = job_id_of("lab1")
    supervisor, start_time = parse_job_id(job_id)
    port = int((folder / f"port.{job_id}").read_text())

    # Base URL through the proxy; a page first (the OAuth dance sets the server's cookie).
    base = f"{hub.url}/user/{LENA}/lab1"
    assert reach(s, base) == 200

    # A kernel: it runs in a session of its own (jupyter_client uses setsid), still in the tree.
    r = requests.post(f"{base}/api/kernels", json={"name": "python3"}, headers=token, timeout=60)
    assert r.status_code == 201, r.text
    kernel_pid = wait_for(
        lambda: [
            p
            for p in tree(job_id)
            if "ipykernel" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
        ],
        30,
        "kernel process",
    )[0]
    assert read_stat(kernel_pid).session == kernel_pid != supervisor

    # Every process is Lena's, in a session and group apart from the hub's.
    entry = pwd.getpwnam(LENA)
    account = {
        "uids": {entry.pw_uid},
        "gids": {entry.pw_gid},
        "groups": sorted(os.getgrouplist(LENA, entry.pw_gid)),
    }
    pids = settled_tree(job_id)
    assert len(pids) >= 4, pids  # the supervisor, the launcher, the server, the kernel
    for pid in pids:
        assert ids(pid) == account, (pid, ids(pid))
    stat = read_stat(supervisor)
    assert stat.session == stat.pgrp == supervisor
    assert read_stat(hub.proc.pid).session != supervisor

    # The server listens on 127.0.0.1 only (so do the kernel's ZMQ ports).
    sockets = listening(pids)
    assert f"{port:04X}" in [a.split(":")[1] for a in sockets], sockets
    assert all(loopback(a) for a in sockets), sockets

    # The hub's token reached the server through its environment only.
    server = next(
        p for p in pids if "ondemand-session-server" in Path(f"/proc/{p}/cmdline").read_text()
    )
    environ = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{server}/environ").read_text().split("\0")
        if "=" in item
    )
    secret = environ["JUPYTERHUB_API_TOKEN"]
    assert len(secret) >= 16
    for path in folder.iterdir():
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    for pid in pids:
        assert secret not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    # ...and nothing of the hub's own environment (ONDEMAND_HUB_STATE_DIR, ...) came along.
    others = {k for k in environ if not k.startswith("JUPYTERHUB_")}
    # (ONDEMAND_NODES is the app script's own: its host, docs/apps.md)
    assert others <= SESSION_ENV | {"PWD", "OLDPWD", "SHLVL", "_", "ONDEMAND_NODES"}, others
    assert environ["ONDEMAND_NODES"] == os.uname().nodename

    luke, _ = hub.login(LUKE, PASSWORDS[LUKE])
    r = luke.get(session_log_url(base), timeout=30)
    assert r.status_code == 403, (r.status_code, r.url)
    assert luke.get(f"{base}/api/status", timeout=30).status_code == 403

    stopping = time.monotonic()
    delete(hub, token, "lab1")
    wait_for(lambda: not [p for p in pids if alive(p)], 15, "every process gone", hub)
    print(f"local session DELETE -> every process gone: {time.monotonic() - stopping:.2f} s")
    assert not alive(supervisor, start_time)
    assert "stopped by SIGTERM" in (folder / "output.log").read_text()


def test_a_hub_restart_keeps_a_running_local_session(local_hub, lena):
    hub = local_hub
    s, token = lena
    r = launch(hub, token, "run1", bc_num_hours=1)
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: server_model(hub, token, LENA, "run1").get("ready"), 60, "run1 up", hub)
    job_id = job_id_of("run1")
    supervisor, start_time = parse_job_id(job_id)
    pids = settled_tree(job_id)

    hub.stop()
    try:
        time.sleep(1)
        dead = [p for p in pids if not alive(p)]
    finally:
        hub.start()  # whatever happens: the module's other tests need the hub
    assert dead == [], dead

    wait_for(lambda: server_model(hub, token, LENA, "run1").get("ready"), 30, "run1", hub)
    assert alive(supervisor, start_time) and job_id_of("run1") == job_id
    assert reach(s, f"{hub.url}/user/{LENA}/run1") == 200

    delete(hub, token, "run1")
    wait_for(lambda: not [p for p in pids if alive(p)], 15, "every process gone", hub)


def test_a_local_app_that_exits_at_once_fails_the_spawn_with_its_output(local_hub, lena):
    hub = local_hub
    _s, token = lena
    r = requests.post(
        f"{hub.url}/hub/api/users/{LENA}/servers/boom1",
        json={"user_options": {"app": "boom", "cluster": "local"}},
        headers=token,
        timeout=30,
    )
    if r.status_code == 500:  # failed within slow_spawn_timeout: the POST carries the error
        message = r.json()["message"]
    else:
        assert r.status_code == 202, r.text
        message = failed_progress_message(hub, token, LENA, "boom1")
    assert "boom: module not found (boom)" in message, message
    assert "before its server was up" in message, message
    wait_for(lambda: not server_model(hub, token, LENA, "boom1"), 20, "failed server removed", hub)


def test_the_walltime_ends_the_whole_tree(local_hub):
    """The start command itself, as the hub runs it (runuser), with a 2 s walltime: a child in
    a session of its own and a grandchild whose parent is gone are ended too."""
    folder = session_dir("wall1")
    run("runuser", "-u", LENA, "--", "install", "-d", "-m", "0700", str(folder))
    script = "#!/bin/bash\nsetsid sleep 300 &\n(sleep 300 &)\nsleep 300\n"
    argv = make_start_argv(PYTHON, str(folder), 2, 1)
    done = run("runuser", "-u", LENA, "--", *argv, input=make_start_input(script, {}).decode())
    job_id = done.stdout.strip()
    supervisor, start_time = parse_job_id(job_id)
    pids = wait_for(lambda: (lambda t: t if len(t) >= 5 else None)(tree(job_id)), 5, "tree")
    wait_for(lambda: not [p for p in pids if alive(p)], 8, "every process gone")
    assert not alive(supervisor, start_time)
    assert "the walltime of 2 s is over" in (folder / "output.log").read_text()


def test_sessions_never_start_as_root(tmp_path):
    argv = make_start_argv(PYTHON, str(tmp_path), 60, 1)
    done = run(*argv, input=make_start_input("#!/bin/bash\n", {}).decode(), check=False)
    assert done.returncode == 1 and "never run as root" in done.stderr
