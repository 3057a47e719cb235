"""The launcher of a session's server, run by the job (on a compute node, or the portal host for
the local cluster) as the user: ``python -m ondemand_hub.launcher <server> <ip> [args...]``.

1. Find a free port on ``<ip>``.
2. Start ``<server> --ip=<ip> --port=<port> [args...]`` (jupyterhub-singleuser or
   ondemand-session-server) as a child, passing on SIGTERM/SIGINT/SIGHUP to it.
3. Once the server *accepts connections*, tell the hub: write the port to ``port.<job id>`` in
   the working directory (the session folder; written to a temporary name, then renamed, so the
   hub never reads half a number). The job id is ``$ONDEMAND_HUB_JOB_ID`` (local cluster) or
   ``$SLURM_JOB_ID``.
4. Exit with the server's exit status.

Writing the port only when the server answers (batchspawner reports it before the server has
even started) means the hub's first readiness check succeeds, instead of JupyterHub's
exponential back-off (0.2, 0.4, 0.8, 1.6 s...) adding up to a second after the server is up.

Standard library only, and nothing imported from the rest of the package: it must start fast.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

#: Seconds between connection attempts while the server starts.
POLL = 0.05
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def accepts(ip: str, port: int) -> bool:
    target = "127.0.0.1" if ip in ("0.0.0.0", "") else ip
    try:
        with socket.create_connection((target, port), timeout=1):
            return True
    except OSError:
        return False


def write_port(job_id: str, port: int) -> str:
    name = f"port.{job_id}"
    with open(name + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(name + ".tmp", name)
    return name


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m ondemand_hub.launcher <server> <ip> [args...]", file=sys.stderr)
        return 2
    server, ip, extra = args[0], args[1], args[2:]
    job_id = os.environ.get("ONDEMAND_HUB_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if not job_id:
        print("ondemand-hub launcher: no ONDEMAND_HUB_JOB_ID or SLURM_JOB_ID", file=sys.stderr)
        return 2
    port = free_port(ip)
    child = subprocess.Popen([server, f"--ip={ip}", f"--port={port}", *extra])

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    while child.poll() is None:
        if accepts(ip, port):
            write_port(job_id, port)
            break
        time.sleep(POLL)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
