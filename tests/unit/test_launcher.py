"""The session launcher (ondemand_hub/launcher.py), run for real: a small Python server stands in
for jupyterhub-singleuser. The port file appears only once the server accepts connections, it
names the job, the server gets the address and port (and any extra arguments), signals reach
the server, and the launcher exits with the server's status."""

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

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
