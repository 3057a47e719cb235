"""Reading a session's own files in its folder, ``~/ondemand/sessions/<name>/``: the end of
``output.log`` and ``thumbnail.png`` (written by the Desktop app's job every ~10 s).

The PUN runs as the user, so these are the user's own files; still every read is bounded, opens
the file without following a symlink in its last component, and refuses anything that is not a
regular file (a FIFO would block the server).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

#: How much of output.log is read at most, whatever the number of lines.
LOG_MAX_BYTES = 256 * 1024
LOG_LINES = 200
#: Thumbnails larger than this are not served (a Desktop thumbnail is ~20-100 KB).
THUMBNAIL_MAX_BYTES = 4 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sessions_root() -> str:
    return os.path.expanduser("~/ondemand/sessions")


def session_path(name: str, file_name: str) -> str:
    """``name`` must already be a validated session name (NAME_RE)."""
    return os.path.join(sessions_root(), name, file_name)


def _open_regular(path: str) -> tuple[int, os.stat_result] | None:
    """An fd and its stat for a regular file, or None when absent or not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


@dataclass(frozen=True)
class LogTail:
    exists: bool
    text: str = ""
    truncated: bool = False  # lines before these were left out
    size: int = 0
    modified: float | None = None


def tail_log(path: str, lines: int = LOG_LINES, max_bytes: int = LOG_MAX_BYTES) -> LogTail:
    """The last ``lines`` lines of ``path``, reading at most its last ``max_bytes`` bytes."""
    opened = _open_regular(path)
    if opened is None:
        return LogTail(exists=False)
    fd, st = opened
    try:
        start = max(0, st.st_size - max_bytes)
        data = os.pread(fd, max_bytes, start)
    finally:
        os.close(fd)
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    cut = start > 0
    if cut and parts:
        parts.pop(0)  # the first line was read from its middle
    if len(parts) > lines:
        parts, cut = parts[-lines:], True
    text = b"\n".join(parts).decode("utf-8", errors="replace")
    return LogTail(exists=True, text=text, truncated=cut, size=st.st_size, modified=st.st_mtime)


def thumbnail_version(path: str) -> str | None:
    """A version of the thumbnail that changes whenever the file is replaced, or None when there
    is none to show."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or not 0 < st.st_size <= THUMBNAIL_MAX_BYTES:
        return None
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


def read_thumbnail(path: str) -> tuple[bytes, str] | None:
    """``(PNG bytes, version)``, or None when absent, too big or not a PNG."""
    opened = _open_regular(path)
    if opened is None:
        return None
    fd, st = opened
    try:
        if not 0 < st.st_size <= THUMBNAIL_MAX_BYTES:
            return None
        data = os.pread(fd, THUMBNAIL_MAX_BYTES + 1, 0)
    finally:
        os.close(fd)
    if not data.startswith(PNG_SIGNATURE) or len(data) > THUMBNAIL_MAX_BYTES:
        return None
    return data, f"{st.st_mtime_ns:x}-{st.st_size:x}"
