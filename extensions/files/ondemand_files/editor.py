"""The editor's side of the server: which files it opens, and saving without silent overwrites.

A file opens when it is a regular file of at most ``max_edit_size`` bytes of UTF-8 text without
NUL bytes. Saving compares the client's etag (:func:`~.listing.etag_of`: modification time in
nanoseconds and size) with the file's current one and refuses with 412 when they differ; it
then writes a temporary file next to the target and renames it over the target, so a reader
never sees half a file and a full disk leaves the old content intact.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from .errors import BadRequest, Changed, NotText, TooLarge, error_from_oserror
from .fsops import DEFAULT_FILE_MODE, create_temp_file, place, unlink_quietly
from .listing import etag_of
from .paths import check_name

#: Ace mode per file extension (lower case); anything else is "text".
ACE_MODES = {
    "c": "c_cpp", "h": "c_cpp", "cc": "c_cpp", "cpp": "c_cpp", "cxx": "c_cpp", "hpp": "c_cpp",
    "cu": "c_cpp", "f": "fortran", "f77": "fortran", "f90": "fortran", "f95": "fortran",
    "f03": "fortran", "py": "python", "ipynb": "json", "r": "r", "jl": "julia", "m": "matlab",
    "sh": "sh", "bash": "sh", "zsh": "sh", "csh": "sh", "ksh": "sh", "slurm": "sh",
    "sbatch": "sh", "pbs": "sh", "js": "javascript", "mjs": "javascript", "ts": "typescript",
    "json": "json", "yml": "yaml", "yaml": "yaml", "toml": "toml", "ini": "ini", "cfg": "ini",
    "conf": "ini", "md": "markdown", "rst": "rst", "tex": "latex", "bib": "latex",
    "html": "html", "htm": "html", "css": "css", "xml": "xml", "svg": "xml", "sql": "sql",
    "pl": "perl", "pm": "perl", "rb": "ruby", "go": "golang", "rs": "rust", "java": "java",
    "scala": "scala", "lua": "lua", "php": "php", "cmake": "cmake", "mk": "makefile",
    "diff": "diff", "patch": "diff", "csv": "text", "txt": "text",
}  # fmt: skip

#: Ace mode for well-known file names without a telling extension.
ACE_MODES_BY_NAME = {
    "makefile": "makefile",
    "gnumakefile": "makefile",
    "dockerfile": "dockerfile",
    "cmakelists.txt": "cmake",
    ".bashrc": "sh",
    ".bash_profile": "sh",
    ".profile": "sh",
    ".zshrc": "sh",
}


def ace_mode(name: str) -> str:
    """The Ace syntax mode for a file name, ``"text"`` when unknown."""
    lower = name.lower()
    if lower in ACE_MODES_BY_NAME:
        return ACE_MODES_BY_NAME[lower]
    _, dot, extension = lower.rpartition(".")
    return ACE_MODES.get(extension, "text") if dot else "text"


def format_size(size: int) -> str:
    """``size`` bytes for people: ``"5 MiB"``, ``"1.5 KiB"``, ``"12 bytes"``."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            break
        value /= 1024
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}"


def _too_large(path: str, size: int, max_size: int) -> TooLarge:
    return TooLarge(
        f"{path} is {format_size(size)}; the editor opens files up to {format_size(max_size)}"
    )


def read_text(path: str, max_size: int) -> dict[str, Any]:
    """``{"path", "content", "etag", "size", "mtime", "mode"}`` of a text file.

    Raises 400 for a directory or special file, 413 over ``max_size``, 415 for binary or
    non-UTF-8 content, 403/404 from the OS.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not hang the worker thread.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        raise error_from_oserror(e, path) from e
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise BadRequest(f"{path} is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise BadRequest(f"{path} is not a regular file")
        if st.st_size > max_size:
            raise _too_large(path, st.st_size, max_size)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_size + 1)
    except OSError as e:
        raise error_from_oserror(e, path) from e
    finally:
        os.close(fd)
    if len(data) > max_size:
        raise _too_large(path, len(data), max_size)
    content = _decode_text(path, data)
    return {
        "path": path,
        "content": content,
        "etag": etag_of(st),
        "size": st.st_size,
        "mtime": st.st_mtime,
        "mode": stat.filemode(st.st_mode),
    }


def _decode_text(path: str, data: bytes) -> str:
    if b"\0" in data:
        raise NotText(f"{path} looks like a binary file; the editor opens text files only")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        message = f"{path} is not UTF-8 text (byte {e.start}); the editor cannot open it"
        raise NotText(message) from e


def _current(target: str) -> os.stat_result | None:
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise error_from_oserror(e, target) from e
    if not stat.S_ISREG(st.st_mode):
        raise BadRequest(f"{target} is not a regular file")
    return st


def _check_unchanged(path: str, current: os.stat_result | None, etag: str | None) -> None:
    current_etag = etag_of(current) if current is not None else None
    if current_etag == etag:
        return
    if current is None:
        raise Changed(f"{path} was deleted since it was opened", etag=None)
    if etag is None:
        raise Changed(f"{path} was created meanwhile by someone else", etag=current_etag)
    raise Changed(f"{path} changed on disk since it was opened", etag=current_etag)


def save_text(path: str, content: object, etag: str | None, max_size: int) -> str:
    """Save ``content`` to ``path`` if the file's etag is still ``etag`` (None: the file must
    not exist). Returns the new etag.

    Raises 412 (:class:`Changed`, with the current etag in ``extra``) on a conflict, 413 over
    ``max_size``, 507 when the disk is full (the old content stays), 403/404 from the OS. A
    symbolic link is written through (the link stays a link); the file keeps its mode but
    becomes owned by the user saving it, as with most editors.
    """
    if not isinstance(content, str):
        raise BadRequest("content must be a string")
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BadRequest("The content is not valid Unicode text") from e
    if len(data) > max_size:
        raise _too_large(path, len(data), max_size)
    target = os.path.realpath(path)
    current = _current(target)
    _check_unchanged(path, current, etag)
    if current is None:
        check_name(os.path.basename(target))
        mode = DEFAULT_FILE_MODE
    else:
        mode = stat.S_IMODE(current.st_mode)
    try:
        if not _write_atomic(target, data, mode, create=current is None):
            # The directory is not writable but the file is: the only way is in place.
            _write_in_place(target, data)
    except FileExistsError as e:
        _check_unchanged(path, _current(target), etag)
        raise error_from_oserror(e, path) from e
    except OSError as e:
        raise error_from_oserror(e, path) from e
    return etag_of(os.stat(target))


def _write_atomic(target: str, data: bytes, mode: int, *, create: bool) -> bool:
    """Write via a temporary sibling and a rename. False (nothing done) when the directory
    refuses the temporary file but the target exists and may be written in place."""
    directory, name = os.path.split(target)
    try:
        fd, tmp = create_temp_file(directory, name, "save")
    except PermissionError:
        if create or not os.access(target, os.W_OK):
            raise
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        place(tmp, target, overwrite=not create)
    except BaseException:
        unlink_quietly(tmp)
        raise
    return True


def _write_in_place(target: str, data: bytes) -> None:
    with open(target, "r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
