"""Background copy and move with progress and per-item errors.

A job runs in a worker thread (the server stays responsive) over the selected items. Each item
is copied into a hidden temporary name in the destination and renamed into place when complete
(``rename_noreplace``: an existing target is an error, never overwritten). A move is a rename
when source and destination share a file system, else a copy followed by deleting the source
(kept if anything failed to copy). One failing item, or one unreadable file inside a copied
directory, is reported in ``errors`` and the rest carries on.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import stat
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequest, Conflict, FilesError, NotFound, error_from_oserror
from .fsops import copy_data, rename_noreplace, temp_name
from .paths import Allowlist

#: How long a finished job stays queryable, in seconds.
KEEP_FINISHED = 3600.0


@dataclass
class Job:
    """Progress of one copy or move; updated by its worker thread, read by the handlers."""

    id: str
    op: str
    items_total: int
    state: str = "running"
    items_done: int = 0
    items_failed: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    finished_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_bytes(self, count: int) -> None:
        """Count ``count`` more bytes copied."""
        with self.lock:
            self.bytes_done += count

    def add_error(self, path: str, message: str) -> None:
        """Report a failure for ``path`` (an item or a file inside one)."""
        with self.lock:
            self.errors.append({"path": path, "message": message})

    def snapshot(self) -> dict[str, Any]:
        """The JSON reply of ``GET files/api/jobs/<id>``."""
        with self.lock:
            return {
                "id": self.id,
                "op": self.op,
                "state": self.state,
                "items_done": self.items_done,
                "items_total": self.items_total,
                "bytes_done": self.bytes_done,
                "bytes_total": self.bytes_total,
                "errors": list(self.errors),
            }


def tree_size(path: str) -> int:
    """Bytes of the regular files at or below ``path`` (unreadable parts count as 0)."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def _copy_file(src: str, dst: str, job: Job) -> None:
    """Copy a regular file's data, mode and times to the new file ``dst``; no ``dst`` is left
    behind on failure."""
    with open(src, "rb") as source:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            copy_data(source.fileno(), fd, job.add_bytes)
            os.close(fd)
            fd = -1
            shutil.copystat(src, dst)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            os.unlink(dst)
            raise


def _copy_tree(src: str, dst: str, job: Job) -> None:
    """Copy the contents of directory ``src`` into the existing directory ``dst``, reporting
    (not raising) the failure of any entry."""
    try:
        entries = list(os.scandir(src))
    except OSError as e:
        job.add_error(src, error_from_oserror(e, src).message)
        return
    for entry in entries:
        source = entry.path
        target = os.path.join(dst, entry.name)
        try:
            if entry.is_dir(follow_symlinks=False):
                os.mkdir(target, 0o700)
                _copy_tree(source, target, job)
                shutil.copystat(source, target, follow_symlinks=False)
            elif entry.is_symlink():
                os.symlink(os.readlink(source), target)
            elif entry.is_file(follow_symlinks=False):
                _copy_file(source, target, job)
            else:
                job.add_error(source, f"Not copied (not a regular file): {source}")
        except OSError as e:
            job.add_error(source, error_from_oserror(e, e.filename or source).message)


def _check_not_inside(src: str, dest_dir: str, verb: str) -> None:
    real_src = os.path.realpath(src)
    real_dest = os.path.realpath(dest_dir)
    if real_dest == real_src or real_dest.startswith(real_src.rstrip("/") + "/"):
        raise BadRequest(f"Cannot {verb} a directory into itself: {src}")


def copy_item(src: str, target: str, job: Job) -> None:
    """Copy ``src`` (file, directory tree or symbolic link) to the new path ``target``."""
    st = os.lstat(src)
    if os.path.lexists(target):
        raise Conflict(f"Already exists: {target}")
    directory, name = os.path.split(target)
    tmp = os.path.join(directory, temp_name(name, "copy"))
    try:
        if stat.S_ISDIR(st.st_mode):
            _check_not_inside(src, directory, "copy")
            os.mkdir(tmp, 0o700)
            _copy_tree(src, tmp, job)
            shutil.copystat(src, tmp)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), tmp)
        elif stat.S_ISREG(st.st_mode):
            _copy_file(src, tmp, job)
        else:
            raise BadRequest(f"Not a regular file, directory or link: {src}")
        rename_noreplace(tmp, target)
    except BaseException:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def move_item(src: str, target: str, job: Job) -> None:
    """Move ``src`` to the new path ``target``: a rename, or copy then delete across file
    systems (the source is kept when part of the copy failed)."""
    st = os.lstat(src)
    if stat.S_ISDIR(st.st_mode):
        _check_not_inside(src, os.path.dirname(target), "move")
    try:
        rename_noreplace(src, target)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    size = tree_size(src)
    with job.lock:
        job.bytes_total += size
    errors_before = len(job.errors)
    copy_item(src, target, job)
    if len(job.errors) > errors_before:
        raise FilesError(f"Copied with errors; the original was kept: {src}")
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(src)
    else:
        os.unlink(src)


def run_job(job: Job, sources: list[str], dest: str, allowlist: Allowlist) -> None:
    """Copy or move every source into the directory ``dest``; called in a worker thread."""
    if job.op == "copy":
        total = sum(tree_size(s) for s in sources if allowlist.allows(s, follow=False))
        with job.lock:
            job.bytes_total = total
    for src in sources:
        try:
            allowlist.check(src, follow=False)
            target = os.path.join(dest, os.path.basename(src))
            if job.op == "copy":
                copy_item(src, target, job)
            else:
                move_item(src, target, job)
            failed = False
        except FilesError as e:
            job.add_error(src, e.message)
            failed = True
        except OSError as e:
            job.add_error(src, error_from_oserror(e, e.filename or src).message)
            failed = True
        with job.lock:
            job.items_done += 1
            job.items_failed += failed


class JobManager:
    """Starts jobs on ``executor`` and keeps them queryable for an hour after they end."""

    def __init__(self, executor: Executor, allowlist: Allowlist, log: logging.Logger) -> None:
        self.executor = executor
        self.allowlist = allowlist
        self.log = log
        self.jobs: dict[str, Job] = {}

    def start(self, op: str, sources: list[str], dest: str) -> Job:
        """Queue a ``copy`` or ``move`` of ``sources`` into ``dest`` and return the job."""
        self.prune()
        job = Job(id=secrets.token_hex(8), op=op, items_total=len(sources))
        self.jobs[job.id] = job
        self.executor.submit(self._run, job, sources, dest)
        return job

    def _run(self, job: Job, sources: list[str], dest: str) -> None:
        try:
            run_job(job, sources, dest, self.allowlist)
            failed = job.items_failed == job.items_total and job.items_total > 0
            state = "failed" if failed else "done"
        except Exception:  # a bug, not a file system error: keep the thread pool alive
            self.log.exception("%s job %s into %r failed", job.op, job.id, dest)
            job.add_error(dest, "Unexpected error; see the server log")
            state = "failed"
        with job.lock:
            job.state = state
            job.finished_at = time.monotonic()
        self.log.info(
            "%s job %s into %r: %s, %d error(s)", job.op, job.id, dest, state, len(job.errors)
        )

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; :class:`NotFound` when unknown or long finished."""
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"No such job: {job_id}")
        return job

    def prune(self) -> None:
        """Forget jobs that finished more than :data:`KEEP_FINISHED` seconds ago."""
        now = time.monotonic()
        for job_id, job in list(self.jobs.items()):
            if job.finished_at is not None and now - job.finished_at > KEEP_FINISHED:
                del self.jobs[job_id]
