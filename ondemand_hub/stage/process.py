"""Process and file primitives for ondemand-stage: directories and files created with explicit
owners and modes without following symlinks, processes started as a user from argv lists in a
clean environment, and processes identified by pid *and* start time so a recycled pid is never
signalled."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass

from .errors import PunError
from .user import PunUser


def ensure_dir(path: str, uid: int, gid: int, mode: int) -> None:
    """Create ``path`` if missing, then make it a real directory owned by uid:gid with ``mode``.

    Its parent must be a checked root-owned directory (:func:`ensure_root_dir`). A symlink, a
    non-directory, or a directory of another account in its place is an error: another user
    may have planted it. The owner and mode are set through the opened descriptor.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        raise PunError(f"{path} is not a usable directory: {e.strerror}") from e
    try:
        owner = os.fstat(fd).st_uid
        if owner not in (0, uid):
            raise PunError(f"{path} belongs to uid {owner}, not {uid}: refusing to use it")
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _unsafe_level(st: os.stat_result, last: bool) -> str | None:
    """Why a level of a root tree cannot be trusted, or None."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != 0:
        return f"belongs to uid {st.st_uid}, not root"
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    # a sticky parent such as /var/tmp is fine: nobody can move root's entries in it
    if writable and (last or not st.st_mode & stat.S_ISVTX):
        return f"is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def ensure_root_dir(path: str, mode: int = 0o755, create: bool = True) -> None:
    """Check every level of the absolute ``path`` from / down: a real directory (not a
    symlink), owned by root, not writable by group or others (a sticky parent excepted).
    Missing levels are made (root's, 0755; the last one ``mode``), or refused when ``create``
    is false (``ondemand-hub doctor`` only looks). Refuses otherwise, naming the level: another
    user may have made it first."""
    if not os.path.isabs(path):
        raise PunError(f"{path}: a root directory must be an absolute path")
    current = "/"
    levels = [p for p in os.path.normpath(path).split("/") if p]
    for i, name in enumerate(["", *levels]):
        current = os.path.join(current, name)
        last = i == len(levels)
        if name and not create and not os.path.lexists(current):
            raise PunError(f"{current} does not exist (made at install: scripts/setup.sh)")
        if name and create:
            try:
                os.mkdir(current, mode if last else 0o755)
            except FileExistsError:
                pass
            except OSError as e:
                raise PunError(f"cannot create {current}: {e.strerror}") from e
        problem = _unsafe_level(os.lstat(current), last)
        if problem:
            raise PunError(
                f"refusing to use {current}: it {problem}; it must be a root-owned directory "
                "that only root can write (made at install: scripts/setup.sh)"
            )


def write_atomic(path: str, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` through a temp file in the same (root-owned) directory."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def exclusive_lock(path: str):
    """Hold an exclusive flock on ``path`` (created 0600, never through a symlink) while the
    block runs: one start/stop/clean at a time per user, whoever calls (hub, cron, admin)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_json(path: str) -> dict | None:
    """Read a JSON state file; None if it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise PunError(f"{path}: unreadable state: {e}") from e


def create_user_file(path: str, user: PunUser) -> int:
    """Open (creating) a log file owned by the user in a root-owned directory; returns an fd."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PunError(f"{path} is not a regular file")
    os.fchown(fd, user.uid, user.gid)
    return fd


def clean_env(user: PunUser, path: str, extra: dict[str, str]) -> dict[str, str]:
    """The whole environment of a user's PUN process: nothing is inherited from the caller."""
    env = {
        "HOME": user.home,
        "USER": user.name,
        "LOGNAME": user.name,
        "SHELL": user.shell,
        "PATH": path,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    env.update(extra)
    return env


def as_user(user: PunUser, env: dict[str, str]) -> dict:
    """Popen arguments that run a child as the user: uid, gid, supplementary groups, the given
    (clean) environment, from the home directory (or / if it is missing)."""
    return {
        "user": user.uid,
        "group": user.gid,
        "extra_groups": list(user.groups),
        "env": env,
        "cwd": user.home if os.path.isdir(user.home) else "/",
        "stdin": subprocess.DEVNULL,
    }


def spawn_as_user(argv: list[str], user: PunUser, env: dict[str, str], log_fd: int) -> int:
    """Start ``argv`` detached, as the user's uid, gid and supplementary groups; return its pid."""
    try:
        proc = subprocess.Popen(
            argv,
            **as_user(user, env),
            umask=0o022,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as e:
        raise PunError(f"cannot start {argv[0]} as {user.name}: {e.strerror}") from e
    # The child outlives this short-lived helper; init adopts and reaps it once we exit.
    return proc.pid


def run_as_user(argv: list[str], user: PunUser, env: dict[str, str], timeout: float) -> str:
    """Run ``argv`` as the user to completion; return its output or raise PunError with it."""
    try:
        done = subprocess.run(
            argv,
            **as_user(user, env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PunError(f"{argv[0]} failed for {user.name}: {e}") from e
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        last = output.splitlines()[-1] if output else f"exit status {done.returncode}"
        raise PunError(f"{os.path.basename(argv[0])} refused the config of {user.name}: {last}")
    return output


@dataclass(frozen=True)
class ProcessId:
    """A process as started: pid plus kernel start time (clock ticks since boot)."""

    pid: int
    start: int

    def to_json(self) -> dict:
        return {"pid": self.pid, "start": self.start}


def process_identity(pid: int) -> tuple[int, int] | None:
    """(uid, start time) of a live, non-zombie process, or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            uid_line = next(line for line in f if line.startswith("Uid:"))
    except (OSError, StopIteration, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(uid_line.split()[1]), int(fields[19])


def live_children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` and that have not exited (zombies left out): for a
    PUN's jupyter-server, the shells of its terminals."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(pid) and fields[0] not in ("Z", "X"):
            children.append(int(entry))
    return children


def identify(pid: int) -> ProcessId:
    identity = process_identity(pid)
    if identity is None:
        raise PunError(f"process {pid} exited right after it started")
    return ProcessId(pid, identity[1])


def is_alive(proc: dict | None, uid: int) -> bool:
    """True if the recorded process still runs, as ``uid``, with the recorded start time."""
    if not proc:
        return False
    identity = process_identity(int(proc["pid"]))
    return identity == (uid, int(proc["start"]))


def terminate(procs: list[dict], uid: int, timeout: float) -> None:
    """SIGTERM each recorded process group that is still ours, then SIGKILL what remains."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        live = [p for p in procs if is_alive(p, uid)]
        for p in live:
            try:
                os.killpg(int(p["pid"]), sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while live and time.monotonic() < deadline:
            time.sleep(0.05)
            live = [p for p in live if is_alive(p, uid)]
        if not live:
            return
    raise PunError("processes did not exit after SIGKILL")
