"""File system primitives and the simple operations of the JSON API.

Primitives: put a finished temporary file or directory in place without clobbering
(:func:`rename_noreplace`), hidden temporary names next to the destination
(:func:`create_temp_file`), fast data copies (:func:`copy_data`), the process umask.
Operations: mkdir, new file, rename, delete, chmod; each raises a :class:`~.errors.FilesError`
with a message for the user, or returns per-path errors for the batch operations.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable

from .errors import BadRequest, FilesError, error_from_oserror
from .paths import NAME_MAX, check_name

#: renameat2(2) flag: fail with EEXIST instead of replacing the target.
RENAME_NOREPLACE = 1
_AT_FDCWD = -100

#: Bytes per copy_file_range/read call: large enough for disk speed, small enough for progress.
COPY_CHUNK = 8 * 1024 * 1024

# copy_file_range refuses some file pairs (other file systems on old kernels, O_APPEND targets,
# special files); read/write handles them all.
_NO_KERNEL_COPY = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF)

_MODE = re.compile(r"^(?:0o?)?([0-7]{3,4})$")

try:
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
except AttributeError:  # a libc without renameat2 (glibc < 2.28, musl < 1.2.?)
    _renameat2 = None


def read_umask() -> int:
    """The process umask, read without changing it (``/proc/self/status``, Linux >= 4.7)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Setting and restoring is racy only against other threads creating files right now,
    # which nothing does at import time.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Mode a new regular file gets, as ``open(..., "w")`` would create it.
DEFAULT_FILE_MODE = 0o666 & ~read_umask()


def rename_noreplace(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` atomically, failing with :class:`FileExistsError` if ``dst``
    exists. Works for files and directories on the same file system (EXDEV otherwise).

    Uses renameat2(RENAME_NOREPLACE); where the file system does not support it (NFS, older
    kernels) a regular file is hard-linked then unlinked, and anything else is renamed after an
    existence check, which leaves a tiny race window.
    """
    if _renameat2 is not None:
        result = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), 1)
        if result == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), src, None, dst)
    if not os.path.isdir(src) or os.path.islink(src):
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK):
                raise
        else:
            os.unlink(src)
            return
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)


def place(src: str, dst: str, *, overwrite: bool) -> None:
    """Move a finished ``src`` to ``dst`` (same file system): ``os.replace`` when
    ``overwrite``, else :func:`rename_noreplace`. Never leaves a partial ``dst``."""
    if overwrite:
        os.replace(src, dst)
    else:
        rename_noreplace(src, dst)


def temp_name(name: str, purpose: str) -> str:
    """A hidden, unique name for a temporary sibling of ``name``, at most 255 bytes."""
    suffix = f".{purpose}-{secrets.token_hex(6)}"
    stem = os.fsencode(name)[: NAME_MAX - len(suffix) - 1]
    return "." + os.fsdecode(stem) + suffix


def create_temp_file(directory: str, name: str, purpose: str) -> tuple[int, str]:
    """Create a hidden temporary file (mode 0600) in ``directory`` for the future ``name``.

    Returns ``(fd, path)``; the caller closes the descriptor and places or removes the file.
    """
    while True:
        path = os.path.join(directory, temp_name(name, purpose))
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            continue
        return fd, path


def unlink_quietly(path: str | None) -> None:
    """Remove a temporary file if it is still there; errors are not the caller's problem."""
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


def copy_data(src_fd: int, dst_fd: int, progress: Callable[[int], None] | None = None) -> int:
    """Copy everything from ``src_fd`` (from its current offset) to ``dst_fd``.

    Uses copy_file_range (in-kernel, reflinks where the file system can), falling back to
    read/write. ``progress`` is called with each chunk's size. Returns the bytes copied.
    """
    total = 0
    use_kernel = hasattr(os, "copy_file_range")
    while True:
        if use_kernel:
            try:
                n = os.copy_file_range(src_fd, dst_fd, COPY_CHUNK)
            except OSError as e:
                if e.errno not in _NO_KERNEL_COPY:
                    raise
                use_kernel = False
                continue
        else:
            data = os.read(src_fd, COPY_CHUNK)
            n = len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(dst_fd, view) :]
        if n == 0:
            return total
        total += n
        if progress is not None:
            progress(n)


def make_directory(path: str) -> None:
    """Create the directory ``path`` (its parent must exist); 409 when it exists."""
    check_name(os.path.basename(path))
    try:
        os.mkdir(path, 0o777)
    except OSError as e:
        raise error_from_oserror(e, path) from e


def make_empty_file(path: str) -> None:
    """Create the empty regular file ``path``; 409 when it exists."""
    check_name(os.path.basename(path))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise error_from_oserror(e, path) from e
    os.close(fd)


def rename_entry(path: str, name: str) -> str:
    """Give ``path`` the new ``name`` in the same directory; returns the new path.

    409 when the new name exists (never replaced), 404 when ``path`` does not.
    """
    check_name(name)
    if path == "/":
        raise BadRequest("The root directory cannot be renamed")
    target = os.path.join(os.path.dirname(path), name)
    if target == path:
        if not os.path.lexists(path):
            raise error_from_oserror(FileNotFoundError(errno.ENOENT, "No such file"), path)
        return path
    try:
        rename_noreplace(path, target)
    except OSError as e:
        failed = target if e.errno == errno.EEXIST else path
        raise error_from_oserror(e, failed) from e
    return target


def delete_entry(path: str, protected: frozenset[str] = frozenset()) -> None:
    """Delete ``path``: a directory with everything in it, anything else (symbolic links
    included, never their targets) with unlink. ``protected`` paths are refused."""
    if path == "/" or path in protected:
        raise BadRequest(f"Refusing to delete {path}")
    try:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError as e:
        raise error_from_oserror(e, e.filename or path) from e


def parse_mode(mode: object) -> int:
    """The permission bits for ``"0750"``, ``"750"``, ``"0o750"`` or ``"2770"``."""
    match = _MODE.match(mode) if isinstance(mode, str) else None
    if match is None:
        raise BadRequest(f"Expected an octal mode such as '0750', got {mode!r}")
    return int(match.group(1), 8)


def change_mode(path: str, mode: int) -> None:
    """chmod ``path`` (following a symbolic link, as chmod(1) does)."""
    try:
        os.chmod(path, mode)
    except OSError as e:
        raise error_from_oserror(e, path) from e


def for_each_path(paths: list[str], operation: Callable[[str], None]) -> list[dict[str, str]]:
    """Run ``operation`` on every path; one failure does not stop the rest.

    Returns ``[{"path", "message"}]`` for the paths that failed.
    """
    errors = []
    for path in paths:
        try:
            operation(path)
        except FilesError as e:
            errors.append({"path": path, "message": e.message})
    return errors
