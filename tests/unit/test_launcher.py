"""The session launcher (ondemand_hub/launcher.py), run for real: a small Python server stands in
for jupyterhub-singleuser. The port file appears only once the server accepts connections, it
names the job, the server gets the address and port (and any extra arguments), signals reach
the server, and the launcher exits with the server's status."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ondemand_hub.launcher import SQUATTED, listener_is_ours, listeners

#: The launcher of this tree (the hub runs the installed one with -I).
REPO = str(Path(__file__).resolve().parents[2])

#: Stands in for jupyterhub-singleuser: waits --delay seconds, then listens on --ip/--port,
#: writes its argv to argv.txt, exits 7 on SIGTERM.
SERVER = textwrap.dedent(
    """\
    import signal, socket, sys, time
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    time.sleep(float(args.get("delay", "0")))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args["ip"], int(args["port"])))
    s.listen()
    open("argv.txt", "w").write(" ".join(sys.argv[1:]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
    while True:
        conn, _ = s.accept()
        conn.close()
    """
)


def launch(tmp_path, job_env, ip, *extra):
    server = tmp_path / "server.py"
    server.write_text(SERVER)
    wrapper = tmp_path / "server"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {server} "$@"\n')
    wrapper.chmod(0o755)
    return subprocess.Popen(
        [sys.executable, "-m", "ondemand_hub.launcher", str(wrapper), ip, *extra],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": REPO, **job_env},
    )


def wait_for_file(path, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.parametrize(
    "job_env, ip, port_file",
    [
        ({"ONDEMAND_HUB_JOB_ID": "local:42:7"}, "127.0.0.1", "port.local:42:7"),
        ({"SLURM_JOB_ID": "4711"}, "0.0.0.0", "port.4711"),
    ],
)
def test_port_file_is_written_once_the_server_accepts(tmp_path, job_env, ip, port_file):
    proc = launch(tmp_path, job_env, ip, "--delay=1", "--ServerApp.root_dir=/home/x")
    try:
        port = int(wait_for_file(tmp_path / port_file))
        # By the time the file exists, the server answers (no readiness back-off needed).
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
        argv = (tmp_path / "argv.txt").read_text().split()
        assert argv == [f"--ip={ip}", f"--port={port}", "--delay=1", "--ServerApp.root_dir=/home/x"]
        assert 1024 <= port <= 65535
        assert not (tmp_path / (port_file + ".tmp")).exists()
        proc.send_signal(signal.SIGTERM)  # passed on to the server, whose status is returned
        assert proc.wait(timeout=10) == 7
    finally:
        proc.kill()


def test_no_port_file_when_the_server_dies_first(tmp_path):
    server = tmp_path / "server"
    server.write_text("#!/bin/sh\necho 'no such module' >&2\nexit 3\n")
    server.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, "-m", "ondemand_hub.launcher", str(server), "127.0.0.1"],
        cwd=tmp_path,
        env={"PYTHONPATH": REPO, "SLURM_JOB_ID": "9"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 3 and "no such module" in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["server"]


def test_a_job_id_is_required(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ondemand_hub.launcher", "/bin/true", "127.0.0.1"],
        cwd=tmp_path,
        env={"PYTHONPATH": REPO},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "SLURM_JOB_ID" in proc.stderr


# -- a port taken by another process is never reported (another user of the node, for real in
# tests/integration/test_hostile_pun.py; here the squatter is a process of the same user) --

TCP_TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 111 1
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 222 1
   2: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000  1001        0 333 1
   3: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 444 1
"""


def test_listeners_on_a_port_are_read_from_the_tcp_tables():
    # 0x1F90 = 8080: both listening sockets (any address), not the connection, not port 8081
    assert listeners([TCP_TABLE], 8080) == {111, 222}
    assert listeners([TCP_TABLE], 8081) == {444}
    assert listeners([TCP_TABLE], 9) == set()


LISTEN = (
    "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); "
    "print(s.getsockname()[1], flush=True); time.sleep(60)"
)


def listening_process(argv: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    return proc, int(proc.stdout.readline())


def test_a_listener_counts_as_ours_only_in_the_servers_process_tree():
    # the listener is the shell's child (the shell waits for it): in the shell's tree
    shell, port = listening_process(["/bin/sh", "-c", f'{sys.executable} -c "{LISTEN}"; true'])
    other, other_port = listening_process([sys.executable, "-c", LISTEN])
    try:
        assert listener_is_ours(port, shell.pid)
        assert not listener_is_ours(port, other.pid)
        assert not listener_is_ours(other_port, shell.pid)
    finally:
        for proc in (shell, other):
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, by its id
            proc.wait()


#: Takes the port of the server as soon as the server's command line shows it, the way another
#: user of the node can read any process's arguments in /proc.
SQUATTER = textwrap.dedent(
    """    import os, socket, sys, time
    marker = sys.argv[1]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                argv = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\\0")
            except OSError:
                continue
            ports = [a[7:] for a in argv if a.startswith("--port=")]
            if marker in argv and ports:
                s = socket.socket()
                s.bind(("127.0.0.1", int(ports[0])))
                s.listen()
                print(ports[0], flush=True)
                time.sleep(30)
                sys.exit(0)
        time.sleep(0.005)
    """
)


def test_a_port_taken_before_the_server_listens_is_never_reported(tmp_path):
    marker = f"--marker={os.getpid()}-{time.monotonic_ns()}"
    squatter = subprocess.Popen(
        [sys.executable, "-c", SQUATTER, marker], stdout=subprocess.PIPE, text=True
    )
    try:
        proc = launch(tmp_path, {"SLURM_JOB_ID": "77"}, "127.0.0.1", "--delay=3", marker)
        taken = squatter.stdout.readline().strip()
        assert taken.isdigit()
        assert proc.wait(timeout=30) == SQUATTED
        assert not (tmp_path / "port.77").exists()
        assert not (tmp_path / "argv.txt").exists()  # the server was stopped before it listened
    finally:
        squatter.kill()
        squatter.wait()
        proc.kill()
