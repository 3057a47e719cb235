"""The local cluster: an app session as a process tree of the user on the portal host (the
embedded default, like Open OnDemand's LinuxHost adapter without ssh and tmux).

Two halves, in one module so that the hub and the user's side agree on every format:

* **Pure parts the hub uses**: the job id ``local:<pid>:<start time>`` (the kernel's start time
  of the session's supervisor, field 22 of ``/proc/<pid>/stat``, so a recycled pid is never
  mistaken for the session), reading a job's state from ``/proc`` (:class:`LocalStatus`, the
  interface of :class:`~ondemand_hub.scheduler.status.StatusCache`), and the argv of the two
  commands below.
* **The commands the hub runs as the user** (through ``ondemand-stage user run``, which first
  refuses root and every system, disabled, locked or expired account; ``start`` refuses uid 0
  again)::

      python -I -m ondemand_hub.scheduler.local start --session-dir D --walltime S --grace G
      python -I -m ondemand_hub.scheduler.local stop local:<pid>:<start> --grace G

  ``start`` reads ``{"script": ..., "env": {JUPYTERHUB_*: ...}}`` on stdin (tokens never travel
  on a command line or into a file, and sudo's ``env_reset`` cannot drop them), writes the
  script to ``D/script.sh``, and forks the *supervisor*: in a new session and process group,
  stdout and stderr to ``D/output.log``, detached from the hub (reparented to init once
  ``start`` exits). ``start`` prints the job id and exits. The supervisor is a child subreaper
  (``PR_SET_CHILD_SUBREAPER``): every process of the session, even one that calls ``setsid``
  (Jupyter kernels do), stays in its tree. It runs ``bash D/script.sh`` with a clean
  environment (the account's HOME, USER, LOGNAME, SHELL, a fixed PATH, LANG, the passed
  ``JUPYTERHUB_*`` and ``ONDEMAND_HUB_JOB_ID``) and ends the whole tree (TERM, then KILL after
  the grace period) when the script ends, when the walltime is reached, or on TERM/INT/HUP.
  ``stop`` checks the job id against ``/proc``, then sends TERM to the supervisor (through a
  pidfd) and to its process group, and KILLs the tree if the supervisor is not gone in time.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import pwd
import re
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .status import JobStatus

JOB_ID = re.compile(r"local:([1-9][0-9]{0,9}):([0-9]{1,20})")
PASSED_ENV = re.compile(r"JUPYTERHUB_[A-Z0-9_]{1,64}")
#: Where a local session's server listens: only this host, never every interface.
LOCAL_IP = "127.0.0.1"
SESSION_PATH = "/usr/local/bin:/usr/bin:/bin"
SCRIPT = "script.sh"
OUTPUT = "output.log"
BASH = "/bin/bash"
MODULE = "ondemand_hub.scheduler.local"
_MAX_INPUT = 1 << 20
_PR_SET_CHILD_SUBREAPER = 36
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class LocalSessionError(Exception):
    """A local session cannot be started or stopped; the message says why."""


# --- pure parts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` a session needs."""

    pid: int
    state: str  # R, S, D, Z (zombie), X (dead), ...
    ppid: int
    pgrp: int
    session: int
    start_time: int  # clock ticks after boot

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X", "x")


def parse_stat(text: str) -> ProcStat:
    """``/proc/<pid>/stat``; the command name may hold spaces and parentheses, so the fields
    are counted from its last ``)``."""
    head, sep, tail = text.rpartition(")")
    if not sep:
        raise ValueError(f"not a /proc stat line: {text[:80]!r}")
    fields = tail.split()
    if len(fields) < 20:
        raise ValueError(f"not a /proc stat line: {text[:80]!r}")
    pid = int(head.split("(", 1)[0])
    return ProcStat(
        pid=pid,
        state=fields[0],
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        session=int(fields[3]),
        start_time=int(fields[19]),
    )


def read_stat(pid: int, proc: str = "/proc") -> ProcStat | None:
    """The process's stat, or None when there is no such process. Other errors (``/proc``
    unreadable) raise OSError: not knowing is not "gone"."""
    try:
        with open(f"{proc}/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return parse_stat(f.read())
    except (FileNotFoundError, ProcessLookupError):
        return None


def make_job_id(pid: int, start_time: int) -> str:
    return f"local:{pid}:{start_time}"


def parse_job_id(job_id: str) -> tuple[int, int]:
    """``(pid, start time)`` of a local job id; ValueError for anything else."""
    match = JOB_ID.fullmatch(job_id)
    if not match:
        raise ValueError(f"not a local job id: {job_id!r}")
    return int(match[1]), int(match[2])


def is_local_job(job_id: str) -> bool:
    return job_id.startswith("local:")


def process_status(job_id: str, proc: str = "/proc") -> JobStatus | None:
    """RUNNING (node: this host's loopback) while the session's supervisor lives; EXITED once
    it is gone, a zombie, or its pid belongs to a later process; None when ``/proc`` cannot be
    read (unknown, never gone)."""
    try:
        pid, start_time = parse_job_id(job_id)
    except ValueError:
        return JobStatus(job_id=job_id, state="EXITED", reason="not a local job id")
    try:
        stat = read_stat(pid, proc)
    except (OSError, ValueError):
        return None
    if stat is None or stat.start_time != start_time or not stat.alive:
        return JobStatus(job_id=job_id, state="EXITED")
    return JobStatus(job_id=job_id, state="RUNNING", node=LOCAL_IP)


class LocalStatus:
    """The interface of :class:`~ondemand_hub.scheduler.status.StatusCache` for local jobs:
    ``/proc`` answers at once, so there is nothing to share or refresh."""

    def __init__(self, proc: str = "/proc"):
        self.proc = proc

    async def refresh(self, force: bool = False, max_age: float | None = None) -> None:
        return None

    async def status(self, job_id: str, max_age: float | None = None) -> JobStatus | None:
        return process_status(job_id, self.proc)


def descendants(root: int, table: Iterable[ProcStat]) -> list[int]:
    """Every process below ``root`` in ``table`` (zombies included), parents first."""
    children: dict[int, list[int]] = {}
    for stat in table:
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = [], list(children.get(root, ()))
    while todo:
        pid = todo.pop(0)
        if pid in found or pid == root:
            continue
        found.append(pid)
        todo += children.get(pid, ())
    return found


def process_table(proc: str = "/proc") -> list[ProcStat]:
    """Every process ``/proc`` shows (those vanishing meanwhile are left out)."""
    table = []
    for name in os.listdir(proc):
        if name.isdigit():
            try:
                stat = read_stat(int(name), proc)
            except (OSError, ValueError):
                continue
            if stat is not None:
                table.append(stat)
    return table


def make_start_argv(python: str, session_dir: str, walltime: int, grace: int) -> list[str]:
    """The argv (run by ``ondemand-stage user run``) that starts a session; the input goes on
    stdin."""
    for name, value in (("walltime", walltime), ("grace", grace)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LocalSessionError(f"{name} must be a whole number of seconds, got {value!r}")
    return [
        python,
        "-I",
        "-m",
        MODULE,
        "start",
        f"--session-dir={session_dir}",
        f"--walltime={walltime}",
        f"--grace={grace}",
    ]


def make_stop_argv(python: str, job_id: str, grace: int) -> list[str]:
    parse_job_id(job_id)
    return [python, "-I", "-m", MODULE, "stop", job_id, f"--grace={grace}"]


def make_start_input(script: str, env: Mapping[str, str]) -> bytes:
    """What ``start`` reads on stdin: the rendered script and the hub's ``JUPYTERHUB_*``."""
    return json.dumps({"script": script, "env": dict(check_env(env))}).encode()


def check_env(env: Mapping[str, str]) -> Mapping[str, str]:
    """Only ``JUPYTERHUB_*`` names with one-line values reach a session from the hub."""
    for name, value in env.items():
        if not PASSED_ENV.fullmatch(name) or not isinstance(value, str):
            raise LocalSessionError(f"refusing to pass the variable {name!r}")
        if "\n" in value or "\r" in value or "\0" in value or len(value) > 4096:
            raise LocalSessionError(f"refusing the value of {name}: not one short line")
    return env


def make_session_env(
    account: pwd.struct_passwd, passed: Mapping[str, str], job_id: str, lang: str = "C.UTF-8"
) -> dict[str, str]:
    """The app script's whole environment: nothing of the hub's but the checked variables."""
    return {
        "HOME": account.pw_dir,
        "USER": account.pw_name,
        "LOGNAME": account.pw_name,
        "SHELL": account.pw_shell or "/bin/sh",
        "PATH": SESSION_PATH,
        "LANG": lang,
        **check_env(passed),
        "ONDEMAND_HUB_JOB_ID": job_id,
    }


# --- as the user: start ----------------------------------------------------------------------


def _open_session_dir(path: str) -> int:
    if not os.path.isabs(path):
        raise LocalSessionError(f"the session folder must be an absolute path: {path!r}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise LocalSessionError(f"{path}: {e.strerror}") from None
    if os.fstat(fd).st_uid != os.getuid():
        os.close(fd)
        raise LocalSessionError(f"{path}: not owned by the session's user")
    return fd


def _write_script(dir_fd: int, script: str) -> None:
    tmp = f".{SCRIPT}.{os.getpid()}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o700, dir_fd=dir_fd)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(script)
    os.rename(tmp, SCRIPT, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def _read_input(stream) -> tuple[str, dict[str, str]]:
    raw = stream.read(_MAX_INPUT + 1)
    if len(raw) > _MAX_INPUT:
        raise LocalSessionError("the input on stdin is too long")
    try:
        data = json.loads(raw)
        script, env = data["script"], data["env"]
    except (ValueError, KeyError, TypeError):
        raise LocalSessionError("expected {'script': ..., 'env': {...}} on stdin") from None
    if not isinstance(script, str) or not isinstance(env, dict):
        raise LocalSessionError("expected {'script': ..., 'env': {...}} on stdin")
    return script, dict(check_env(env))


def start(session_dir: str, walltime: int, grace: int, stdin=None) -> str:
    """Start a session as the calling user; its job id. The supervisor runs on in the
    background, detached; this process only returns."""
    if os.getuid() == 0:
        raise LocalSessionError("sessions never run as root")
    script, passed = _read_input(stdin or sys.stdin.buffer)
    account = pwd.getpwuid(os.getuid())
    dir_fd = _open_session_dir(session_dir)
    try:
        _write_script(dir_fd, script)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        log_fd = os.open(OUTPUT, flags, 0o600, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    lang = os.environ.get("LANG", "C.UTF-8")
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # the supervisor
        try:
            os.setsid()
            os.chdir(session_dir)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.closerange(3, 65536)  # the hub waits for EOF on the pipe it gave us
            job_id = make_job_id(os.getpid(), _own_start_time())
            env = make_session_env(account, passed, job_id, lang)
            code = supervise(os.path.join(session_dir, SCRIPT), env, job_id, walltime, grace)
        except BaseException as e:  # never return into the parent's code
            print(f"ondemand-hub: the session's supervisor failed: {e!r}", file=sys.stderr)
            code = 70
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    os.close(log_fd)
    stat = read_stat(pid)
    if stat is None:  # cannot happen: it is our child until we exit
        raise LocalSessionError(f"the session's process {pid} vanished at once")
    return make_job_id(pid, stat.start_time)


def _own_start_time() -> int:
    stat = read_stat(os.getpid())
    assert stat is not None
    return stat.start_time


# --- as the user: the supervisor -------------------------------------------------------------


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _reap() -> dict[int, int]:
    """Collect every child that ended: ``{pid: wait status}``."""
    ended = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended[pid] = status


def _say(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"ondemand-hub: {message} at {stamp}", flush=True)


def supervise(script: str, env: dict[str, str], job_id: str, walltime: int, grace: int) -> int:
    """Run ``bash script`` and wait for it, the walltime or a stop signal; then end every
    process of the session. Returns the exit code for the supervisor."""
    _become_subreaper()
    waited = {signal.SIGCHLD, *_STOP_SIGNALS}
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD is never discarded
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    deadline = time.monotonic() + walltime
    _say(f"session {job_id} starts with a walltime of {walltime} s")
    app = os.posix_spawn(
        BASH,
        [BASH, script],
        env,
        setsigmask=(),
        setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),  # Python ignores them; bash must not
    )
    code = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _say(f"the walltime of {walltime} s is over: ending the session")
            code = 124
            break
        info = signal.sigtimedwait(waited, remaining)
        if info is None:
            continue
        if info.si_signo == signal.SIGCHLD:
            ended = _reap()
            if app in ended:
                code = os.waitstatus_to_exitcode(ended[app])
                _say(f"the app's script ended (exit code {code})")
                code = code if code >= 0 else 128 - code
                break
        else:
            _say(f"stopped by {signal.Signals(info.si_signo).name}")
            code = 128 + info.si_signo
            break
    end_tree(os.getpid(), grace)
    return code


def end_tree(root: int, grace: float, proc: str = "/proc") -> None:
    """TERM every process below ``root``, KILL those left after ``grace`` seconds, reap
    (``root`` must be their subreaper). Processes it may not signal are given up on."""
    deadline = time.monotonic() + grace
    termed: set[int] = set()
    while time.monotonic() < deadline + 2:
        _reap()
        alive = [
            pid
            for pid in descendants(root, process_table(proc))
            if (stat := read_stat(pid, proc)) is not None and stat.alive
        ]
        if not alive:
            _reap()  # those that died since the last look, rather than leave zombies to init
            return
        late = time.monotonic() >= deadline
        for pid in alive:
            if late or pid not in termed:
                try:
                    os.kill(pid, signal.SIGKILL if late else signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
                termed.add(pid)
        signal.sigtimedwait({signal.SIGCHLD}, 0.1)


# --- as the user: stop -----------------------------------------------------------------------


def _same_process(pid: int, start_time: int) -> bool:
    stat = read_stat(pid)
    return stat is not None and stat.start_time == start_time and stat.alive


def stop(job_id: str, grace: float) -> str:
    """End the session ``job_id``: "stopped", or "gone" when it had already ended."""
    pid, start_time = parse_job_id(job_id)
    if not _same_process(pid, start_time):
        return "gone"
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return "gone"
    try:
        # Checked again with the pidfd open: from here on a pid reuse cannot fool us.
        if not _same_process(pid, start_time):
            return "gone"
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        try:
            os.killpg(pid, signal.SIGTERM)  # its group: the script and the server
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace + 3  # the supervisor itself waits ``grace``
        while time.monotonic() < deadline:
            if not _same_process(pid, start_time):
                return "stopped"
            time.sleep(0.1)
        for child in descendants(pid, process_table()):
            try:
                os.kill(child, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return "killed"
    finally:
        os.close(pidfd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start a session (input on stdin); prints its job id")
    p_start.add_argument("--session-dir", required=True)
    p_start.add_argument("--walltime", type=int, required=True, help="seconds")
    p_start.add_argument("--grace", type=int, default=5, help="seconds from TERM to KILL")
    p_stop = sub.add_parser("stop", help="end a session's whole process tree")
    p_stop.add_argument("job_id")
    p_stop.add_argument("--grace", type=int, default=5, help="seconds from TERM to KILL")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            if args.walltime < 1 or args.grace < 1:
                raise LocalSessionError("--walltime and --grace must be at least 1")
            print(start(args.session_dir, args.walltime, args.grace), flush=True)
        else:
            print(stop(args.job_id, args.grace), flush=True)
    except (LocalSessionError, ValueError, OSError) as e:
        print(f"{MODULE}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
