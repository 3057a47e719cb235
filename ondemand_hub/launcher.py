"""The launcher of a session's server, run by the job (on a compute node, or the portal host for
the local cluster) as the user: ``python -m ondemand_hub.launcher <server> <ip> [args...]``.

1. Find a free port on ``<ip>``.
2. Start ``<server> --ip=<ip> --port=<port> [args...]`` (jupyterhub-singleuser or
   ondemand-session-server) as a child, passing on SIGTERM/SIGINT/SIGHUP to it.
3. Once the server *accepts connections* and the listener on the port is the server's own (a
   socket among the fds of the server or its children, read from /proc: another user of the
   node may have bound the port between steps 1 and 2, e.g. reading ``--port=`` from the
   server's command line), tell the hub: write the port to ``port.<job id>`` in
   the working directory (the session folder; written to a temporary name, then renamed, so the
   hub never reads half a number). The job id is ``$ONDEMAND_HUB_JOB_ID`` (local cluster) or
   ``$SLURM_JOB_ID``.
   If another process listens there, the port is never reported: the launcher stops the server
   and exits with status 3, saying so (the owner's traffic never reaches the squatter).
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
#: Exit status when another process listens on the server's port.
SQUATTED = 3


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


def listeners(tables: list[str], port: int | None = None) -> set[int]:
    """Inodes of the TCP sockets in LISTEN state on ``port`` (any address; any port when
    None), from the text of /proc/net/tcp and /proc/net/tcp6."""
    inodes = set()
    for text in tables:
        for line in text.splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and port in (None, int(local.rsplit(":", 1)[1], 16)):
                inodes.add(int(inode))
    return inodes


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def socket_inodes(pids: list[int]) -> set[int]:
    """Inodes of the sockets the processes hold open."""
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def read_tcp_tables() -> list[str]:
    texts = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, encoding="ascii") as f:
                texts.append(f.read())
        except OSError:
            continue
    return texts


def listener_is_ours(port: int, pid: int) -> bool:
    """True if something listens on ``port`` and every listener there belongs to ``pid``'s
    process tree."""
    found = listeners(read_tcp_tables(), port)
    return bool(found) and found <= socket_inodes(process_tree(pid))


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
            if not listener_is_ours(port, child.pid):
                return refuse_squatted_port(child, port)
            write_port(job_id, port)
            break
        time.sleep(POLL)
    return child.wait()


def refuse_squatted_port(child: subprocess.Popen, port: int) -> int:
    print(
        f"ondemand-hub launcher: port {port} is held by a process this session did not start "
        "(another user of this node took it): not reporting it; stopping.",
        file=sys.stderr,
        flush=True,
    )
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return SQUATTED


if __name__ == "__main__":
    sys.exit(main())
