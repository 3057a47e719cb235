"""Downloads: the headers of a file download and a directory as a zip streamed while it is built.

A file is sent by the PUN's nginx (``X-Accel-Redirect``, see :func:`accel_redirect_uri`) with
the ``Content-Type`` and ``Content-Disposition`` made here; viewed inline (``?view=1``),
anything a browser could run as a page (HTML, SVG, XML, JavaScript...) is sent as
``text/plain``, so a user's file never runs as script on the portal's origin.

A zip is written by :func:`stream_zip` in a worker thread into a non-seekable writer that hands
fixed-size chunks to the handler; memory stays flat whatever the directory's size.
Unreadable files are skipped and listed in a final ``ERRORS.txt`` inside the zip.
"""

from __future__ import annotations

import io
import mimetypes
import os
import stat
import threading
import zipfile
from collections.abc import Callable
from urllib.parse import quote

from .paths import Allowlist, quote_path

#: The internal nginx location that serves any absolute path (``alias /``).
ACCEL_PREFIX = "/__pun_file"

#: Bytes handed to the client at a time while a zip is built.
ZIP_CHUNK = 256 * 1024

#: Types a browser shows inline without running anything; everything else is text/plain.
_INLINE_PREFIXES = ("image/", "audio/", "video/")
_INLINE_TYPES = {"application/pdf", "text/plain"}
_ACTIVE_TYPES = {"image/svg+xml"}

#: Characters RFC 5987 allows unencoded in ``filename*`` (attr-char), besides alphanumerics.
_ATTR_CHARS = "!#$&+-.^_`|~"


def accel_redirect_uri(path: str) -> str:
    """The ``X-Accel-Redirect`` value that makes nginx send the file at ``path``."""
    return ACCEL_PREFIX + quote_path(path)


def guess_type(name: str) -> str:
    """The MIME type for a file name (``application/octet-stream`` when unknown)."""
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def content_type(name: str, view: bool) -> str:
    """``Content-Type`` of a download (``view=False``) or an inline view."""
    mime = guess_type(name)
    if not view:
        return mime
    safe = mime.startswith(_INLINE_PREFIXES) or mime in _INLINE_TYPES
    if mime == "text/plain" or not safe or mime in _ACTIVE_TYPES:
        return "text/plain; charset=utf-8"
    return mime


def content_disposition(name: str, inline: bool) -> str:
    """RFC 6266 ``Content-Disposition`` with an ASCII ``filename`` fallback and the exact
    UTF-8 name in ``filename*`` (bytes that are not UTF-8 become U+FFFD)."""
    text = os.fsencode(name).decode("utf-8", "replace")
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in text)
    encoded = quote(text.encode("utf-8"), safe=_ATTR_CHARS)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def zip_name(directory: str) -> str:
    """The file name of a directory's zip: ``<name>.zip`` (``root.zip`` for ``/``)."""
    return (os.path.basename(directory) or "root") + ".zip"


class ZipCancelled(Exception):
    """The client went away; the zip worker stops."""


class ChunkedWriter(io.RawIOBase):
    """A write-only, non-seekable file that passes ``ZIP_CHUNK``-sized pieces to ``send``.

    ``send`` blocks while the client is behind (back-pressure); once ``cancelled`` is set,
    writes raise :class:`ZipCancelled`.
    """

    def __init__(self, send: Callable[[bytes], None], cancelled: threading.Event) -> None:
        super().__init__()
        self._send = send
        self._cancelled = cancelled
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self._cancelled.is_set():
            raise ZipCancelled()
        self._buffer += data
        if len(self._buffer) >= ZIP_CHUNK:
            self._send(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def finish(self) -> None:
        """Send what is left."""
        if self._buffer:
            self._send(bytes(self._buffer))
            self._buffer.clear()


def _arcname(*parts: str) -> str:
    # zipfile stores names as UTF-8: undecodable bytes become U+FFFD.
    return os.fsencode("/".join(p for p in parts if p)).decode("utf-8", "replace")


def _add_file(
    zf: zipfile.ZipFile, path: str, arcname: str, allowlist: Allowlist, errors: list[str]
) -> None:
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            errors.append(f"{path}: not a regular file, skipped")
        elif not allowlist.allows(path):
            errors.append(f"{path}: links outside the allowed directories, skipped")
        else:
            zf.write(path, arcname)
    except OSError as e:
        errors.append(f"{path}: {e.strerror or e}")


def write_zip(root: str, out: io.RawIOBase, allowlist: Allowlist) -> list[str]:
    """Write the tree below ``root`` as a zip to ``out`` (one top folder named like
    ``root``); returns the problems, also written to ``ERRORS.txt`` in the zip. Symbolic links
    to files are followed, links to directories are not."""
    base = os.path.basename(root) or "root"
    errors: list[str] = []

    def walk_error(error: OSError) -> None:
        errors.append(f"{error.filename}: {error.strerror or error}")

    with zipfile.ZipFile(
        out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, strict_timestamps=False
    ) as zf:
        for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            folder = _arcname(base, "" if rel == "." else rel)
            for name in list(dirnames):
                if os.path.islink(os.path.join(dirpath, name)):
                    errors.append(f"{os.path.join(dirpath, name)}: link to a directory, skipped")
                    dirnames.remove(name)
            if not dirnames and not filenames:
                zf.writestr(folder + "/", b"")
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                _add_file(zf, path, _arcname(folder, name), allowlist, errors)
        if errors:
            zf.writestr("ERRORS.txt", "Not in this zip:\n" + "".join(f"{e}\n" for e in errors))
    return errors


def stream_zip(
    root: str, send: Callable[[bytes], None], cancelled: threading.Event, allowlist: Allowlist
) -> list[str]:
    """Build the zip of ``root`` in the calling (worker) thread, passing chunks to ``send``.

    Returns the problems met (see :func:`write_zip`); stops quietly when ``cancelled``.
    """
    writer = ChunkedWriter(send, cancelled)
    try:
        errors = write_zip(root, writer, allowlist)
        writer.finish()
    except ZipCancelled:
        return []
    return errors
