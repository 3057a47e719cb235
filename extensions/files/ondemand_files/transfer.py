"""Uploads: put a complete file in place without ever exposing a partial one, and resumable
upload sessions.

Bytes arrive in one of two ways. Through the PUN's nginx, the whole body is already in a file
nginx wrote (:func:`trusted_body_file` decides whether to believe the header naming it), and
:func:`adopt_file` moves it into place: a rename when it is on the destination's file system,
else a copy into a hidden temporary file next to the destination followed by a rename. Without
nginx (development, tests) :class:`StreamingUpload` writes the request body into such a
temporary file as it arrives. Either way the destination appears only when complete, with
``rename_noreplace`` so nothing is clobbered unless ``overwrite`` was asked for, and nothing is
left behind on failure.

Resumable sessions (:class:`UploadSessions`) keep their bytes in a staging directory, one
sub-directory per session holding ``session.json`` and ``data``; the size of ``data`` is the
offset to resume from, so it survives a server restart.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import stat
import time
from dataclasses import dataclass
from typing import Any

from .editor import format_size
from .errors import (
    BadRequest,
    Conflict,
    FilesError,
    NoSpace,
    SessionGone,
    TooLarge,
    error_from_oserror,
)
from .fsops import DEFAULT_FILE_MODE, copy_data, create_temp_file, place, unlink_quietly
from .paths import check_name

SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
#: Upload data, staging and nginx's body files are opened never following a symlink.
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+)$")


def trusted_body_file(
    value: str | None, from_nginx: bool, body_dir: str | None, length: str | None = None
) -> str | None:
    """The request body file nginx wrote, or None when the request carries its body itself.

    Believed only when nginx set ``X-Ondemand-Nginx: 1`` (a client cannot forge it) and the
    file's real path is inside ``body_dir`` (``$ONDEMAND_HUB_PUN_TMP/client_body``); header
    values arrive as latin-1, so bytes are recovered before decoding. ``length`` is nginx's
    ``X-Ondemand-Body-Length``; a file of another size is refused.
    """
    if not value:
        return None
    if not from_nginx or not body_dir:
        raise BadRequest("X-Ondemand-Body-File is only accepted from the PUN's nginx")
    path = os.path.realpath(os.fsdecode(value.encode("latin-1")))
    root = os.path.realpath(body_dir)
    if not path.startswith(root.rstrip("/") + "/"):
        raise BadRequest("X-Ondemand-Body-File is outside nginx's client body directory")
    try:
        size = os.stat(path).st_size
    except OSError as e:
        raise BadRequest(f"The uploaded body is gone: {e.strerror}") from e
    if length and length.isdigit() and int(length) != size:
        raise BadRequest("The upload is incomplete; send it again")
    return path


def check_upload_target(dest: str, overwrite: bool) -> int:
    """Check that ``dest`` may receive an upload and return the mode the file should get.

    The name must be legal and the parent an existing directory (404/400); an existing
    ``dest`` is 409 unless ``overwrite`` (then its mode is kept), and never a directory.
    """
    check_name(os.path.basename(dest))
    parent = os.path.dirname(dest)
    try:
        if not stat.S_ISDIR(os.stat(parent).st_mode):
            raise BadRequest(f"Not a directory: {parent}")
        st = os.lstat(dest)
    except FileNotFoundError as e:
        if e.filename == dest:
            return DEFAULT_FILE_MODE
        raise error_from_oserror(e, parent) from e
    except OSError as e:
        raise error_from_oserror(e, dest) from e
    if stat.S_ISDIR(st.st_mode):
        raise Conflict(f"A directory of that name exists: {dest}")
    if not overwrite:
        raise Conflict(f"Already exists: {dest}")
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else DEFAULT_FILE_MODE


def _placement_error(error: OSError, dest: str) -> FilesError:
    if error.errno == errno.EEXIST:
        return Conflict(f"Already exists: {dest}")
    return error_from_oserror(error, dest)


def copy_into_place(src: str, dest: str, *, overwrite: bool, mode: int) -> None:
    """Copy the file ``src`` to a hidden temporary file next to ``dest``, then rename it into
    place. The temporary file is removed on any failure."""
    directory, name = os.path.split(dest)
    try:
        fd, tmp = create_temp_file(directory, name, "upload")
    except OSError as e:
        raise error_from_oserror(e, directory) from e
    try:
        with os.fdopen(os.open(src, os.O_RDONLY | _NOFOLLOW), "rb") as source:
            copy_data(source.fileno(), fd)
        os.fchmod(fd, mode)
        os.close(fd)
        fd = -1
        place(tmp, dest, overwrite=overwrite)
    except OSError as e:
        unlink_quietly(tmp)
        raise _placement_error(e, dest) from e
    finally:
        if fd >= 0:
            os.close(fd)


def adopt_file(src: str, dest: str, *, overwrite: bool) -> int:
    """Move the complete file ``src`` (nginx's body file, a session's data) to ``dest``.

    Returns its size. On the same file system it is renamed; otherwise copied next to
    ``dest`` first and ``src`` removed afterwards.
    """
    mode = check_upload_target(dest, overwrite)
    size = os.stat(src).st_size
    os.chmod(src, mode)
    try:
        place(src, dest, overwrite=overwrite)
        return size
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise _placement_error(e, dest) from e
    copy_into_place(src, dest, overwrite=overwrite, mode=mode)
    unlink_quietly(src)
    return size


class StreamingUpload:
    """A request body streamed into a hidden temporary file next to its destination.

    Call :meth:`write` per chunk, then :meth:`commit` to put the file in place, or
    :meth:`abort` (connection lost, error) to remove every trace. A write error (full disk) is
    kept and raised by :meth:`commit`; later chunks are dropped.
    """

    def __init__(self, dest: str, overwrite: bool) -> None:
        self.dest = dest
        self.overwrite = overwrite
        self.mode = check_upload_target(dest, overwrite)
        directory, name = os.path.split(dest)
        try:
            self.fd, self.tmp = create_temp_file(directory, name, "upload")
        except OSError as e:
            raise error_from_oserror(e, directory) from e
        self.size = 0
        self.error: FilesError | None = None

    def write(self, chunk: bytes) -> None:
        """Append ``chunk`` to the temporary file."""
        if self.error is not None:
            return
        try:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as e:
            self.error = error_from_oserror(e, self.dest)
            self.abort()
            return
        self.size += len(chunk)

    def commit(self) -> int:
        """Put the complete file at its destination and return its size."""
        if self.error is not None:
            raise self.error
        try:
            os.fchmod(self.fd, self.mode)
            os.close(self.fd)
            self.fd = -1
            place(self.tmp, self.dest, overwrite=self.overwrite)
            self.tmp = ""
        except OSError as e:
            raise _placement_error(e, self.dest) from e
        finally:
            self.abort()
        return self.size

    def abort(self) -> None:
        """Close and remove the temporary file, if still there. Safe to call repeatedly."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.tmp:
            unlink_quietly(self.tmp)
            self.tmp = ""


def parse_content_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` of ``Content-Range: bytes <first>-<last>/<size>``, or None for
    ``bytes */<size>`` (no bytes: retry putting a complete upload in place)."""
    match = _RANGE.match(header or "")
    if match is None:
        raise BadRequest("Expected a header Content-Range: bytes <first>-<last>/<size>")
    first, last, total = match.groups()
    if int(total) != size:
        raise BadRequest(f"This upload is {size} bytes, not {total}")
    if first is None:
        return None
    if not int(first) <= int(last) < size:
        raise BadRequest(f"Bad range {first}-{last} for {size} bytes")
    return int(first), int(last)


@dataclass(frozen=True)
class UploadSession:
    """One resumable upload: where it goes and the directory holding its bytes."""

    id: str
    path: str
    size: int
    overwrite: bool
    directory: str

    @property
    def data_path(self) -> str:
        """The staged bytes; their count is the offset to resume from."""
        return os.path.join(self.directory, "data")

    def offset(self) -> int:
        """How many bytes have arrived; :class:`SessionGone` if the session was removed."""
        try:
            return os.stat(self.data_path).st_size
        except FileNotFoundError as e:
            raise SessionGone(f"Upload session {self.id} is gone") from e

    def describe(self) -> dict[str, Any]:
        """``{"id", "offset", "size", "path"}``: where the client resumes."""
        return {"id": self.id, "offset": self.offset(), "size": self.size, "path": self.path}


class UploadSessions:
    """Resumable upload sessions staged under ``staging_dir`` (created 0700 when missing).

    Sessions not written to for ``max_age`` seconds are removed by :meth:`remove_stale`.
    Only one chunk per session is accepted at a time (:meth:`claim`).
    """

    def __init__(self, staging_dir: str, max_age: float) -> None:
        self.staging_dir = staging_dir
        self.max_age = max_age
        self._busy: set[str] = set()

    def _ensure_staging_dir(self) -> None:
        """Create the staging directory (0700) if missing; refuse one that is a symlink or
        another account's."""
        try:
            os.makedirs(self.staging_dir, mode=0o700, exist_ok=True)
            st = os.lstat(self.staging_dir)
        except OSError as e:
            raise error_from_oserror(e, self.staging_dir) from e
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            raise FilesError(f"{self.staging_dir} is not this user's own directory")

    def create(self, path: str, size: object, overwrite: object) -> UploadSession:
        """Open a session for ``size`` bytes to ``path``; 409 at once if ``path`` exists and
        ``overwrite`` is false, 507 when either file system lacks the space."""
        if type(size) is not int or size < 0:
            raise BadRequest("size must be a whole number of bytes")
        if not isinstance(overwrite, bool):
            raise BadRequest("overwrite must be true or false")
        check_upload_target(path, overwrite)
        self._ensure_staging_dir()
        for directory in (os.path.dirname(path), self.staging_dir):
            free = shutil.disk_usage(directory).free
            if free < size:
                raise NoSpace(
                    f"Not enough space in {directory}: {format_size(size)} needed, "
                    f"{format_size(free)} free"
                )
        session_id = secrets.token_hex(16)
        session = UploadSession(
            session_id, path, size, overwrite, os.path.join(self.staging_dir, session_id)
        )
        meta = {"path": path, "size": size, "overwrite": overwrite, "created": time.time()}
        try:
            os.mkdir(session.directory, 0o700)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
            with os.fdopen(
                os.open(os.path.join(session.directory, "session.json"), flags, 0o600), "w"
            ) as f:
                json.dump(meta, f)
            os.close(os.open(session.data_path, flags, 0o600))
        except OSError as e:
            shutil.rmtree(session.directory, ignore_errors=True)
            raise error_from_oserror(e, self.staging_dir) from e
        return session

    def get(self, session_id: str) -> UploadSession:
        """The session ``session_id``; :class:`SessionGone` when unknown or removed."""
        gone = SessionGone(f"Upload session {session_id} is gone (cancelled, done or expired)")
        if not SESSION_ID.match(session_id):
            raise gone
        directory = os.path.join(self.staging_dir, session_id)
        try:
            with os.fdopen(
                os.open(os.path.join(directory, "session.json"), os.O_RDONLY | _NOFOLLOW)
            ) as f:
                meta = json.load(f)
            return UploadSession(
                session_id, meta["path"], int(meta["size"]), bool(meta["overwrite"]), directory
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise gone from e

    def claim(self, session: UploadSession) -> None:
        """Mark a chunk of ``session`` as in progress; 409 if one already is."""
        if session.id in self._busy:
            raise Conflict(
                "Another chunk of this upload is still arriving", offset=session.offset()
            )
        self._busy.add(session.id)

    def release(self, session: UploadSession) -> None:
        """End :meth:`claim`."""
        self._busy.discard(session.id)

    def cancel(self, session_id: str) -> None:
        """Delete the session and its staged bytes."""
        session = self.get(session_id)
        shutil.rmtree(session.directory, ignore_errors=True)

    def complete(self, session: UploadSession) -> None:
        """Put the fully staged file at its destination and remove the session.

        On failure (the target appeared meanwhile, a full disk) the session stays, so the
        client may retry with ``Content-Range: bytes */<size>`` or cancel.
        """
        adopt_file(session.data_path, session.path, overwrite=session.overwrite)
        shutil.rmtree(session.directory, ignore_errors=True)

    def remove_stale(self, now: float | None = None) -> list[str]:
        """Remove sessions idle for more than ``max_age`` seconds; returns their ids."""
        now = time.time() if now is None else now
        removed = []
        try:
            names = os.listdir(self.staging_dir)
        except FileNotFoundError:
            return []
        for name in names:
            if not SESSION_ID.match(name) or name in self._busy:
                continue
            directory = os.path.join(self.staging_dir, name)
            with contextlib.suppress(FileNotFoundError):
                if now - _last_write(directory) > self.max_age:
                    shutil.rmtree(directory, ignore_errors=True)
                    removed.append(name)
        return removed


def _last_write(directory: str) -> float:
    times = [os.stat(directory).st_mtime]
    for name in ("data", "session.json"):
        with contextlib.suppress(FileNotFoundError):
            times.append(os.stat(os.path.join(directory, name)).st_mtime)
    return max(times)


class ChunkWriter:
    """Appends one chunk of a session at its current end, from a stream or from a file.

    Bytes beyond the chunk's announced length are refused; bytes written stay even when the
    request breaks off, so the client resumes from :meth:`UploadSession.offset`.
    """

    def __init__(self, session: UploadSession, first: int, last: int) -> None:
        self.session = session
        self.expected = last - first + 1
        self.received = 0
        self.error: FilesError | None = None
        try:
            self.fd = os.open(session.data_path, os.O_WRONLY | _NOFOLLOW)
        except FileNotFoundError as e:
            raise SessionGone(f"Upload session {session.id} is gone") from e
        os.lseek(self.fd, first, os.SEEK_SET)

    def write(self, chunk: bytes) -> None:
        """Append a piece of the request body."""
        if self.error is not None:
            return
        if self.received + len(chunk) > self.expected:
            self.error = BadRequest("The body is longer than its Content-Range")
            chunk = chunk[: self.expected - self.received]
        try:
            view = memoryview(chunk)
            while view:
                written = os.write(self.fd, view)
                self.received += written
                view = view[written:]
        except OSError as e:
            self.error = error_from_oserror(e, self.session.path)

    def write_file(self, path: str) -> None:
        """Append the whole file ``path`` (nginx's body file) as this chunk."""
        if os.stat(path).st_size != self.expected:
            raise BadRequest("The body's length does not match its Content-Range")
        try:
            with os.fdopen(os.open(path, os.O_RDONLY | _NOFOLLOW), "rb") as source:
                self.received = copy_data(source.fileno(), self.fd)
        except OSError as e:
            raise error_from_oserror(e, self.session.path) from e

    def close(self, *, check: bool = True) -> None:
        """Close the data file. With ``check``, raise the first error met, or 400 for a body
        shorter than announced (the bytes that did arrive stay)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not check:
            return
        if self.error is not None:
            raise self.error
        if self.received != self.expected:
            raise BadRequest("The body is shorter than its Content-Range")


def check_chunk_size(first: int, last: int, max_chunk: int) -> None:
    """413 for a chunk over ``max_chunk`` bytes."""
    if last - first + 1 > max_chunk:
        raise TooLarge(f"A chunk can be at most {format_size(max_chunk)}")
