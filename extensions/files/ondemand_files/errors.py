"""The errors of the files extension: what a person is told, and the HTTP code that goes with it.

The pure modules raise these; the handlers turn them into ``{"status": "error", "message": ...}``
with :attr:`FilesError.status` (see docs/files-api.md for the codes), plus any ``extra`` fields
(the current ``offset`` of an upload session, the current ``etag`` of a changed file).
"""

from __future__ import annotations

import errno
from typing import Any


class FilesError(Exception):
    """Root of the extension's errors. ``message`` is shown to the user as is."""

    status = 500

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(FilesError):
    """Bad input: a bad name, mode, path, range or JSON body."""

    status = 400


class Forbidden(FilesError):
    """The operating system or the admin's allowlist says no."""

    status = 403


class NotFound(FilesError):
    """No such path, upload session or job."""

    status = 404


class Conflict(FilesError):
    """The target exists, or the request does not fit the current state (upload offset)."""

    status = 409


class SessionGone(FilesError):
    """The upload session was cancelled, completed or expired."""

    status = 410


class Changed(FilesError):
    """The file changed on disk since the client read it (editor save)."""

    status = 412


class TooLarge(FilesError):
    """Too large for the editor (or an upload chunk larger than allowed)."""

    status = 413


class NotText(FilesError):
    """Not UTF-8 text: the editor refuses binary files."""

    status = 415


class NoSpace(FilesError):
    """No space left on the device, or the quota is exhausted."""

    status = 507


_ERRNO_CLASSES: dict[int, type[FilesError]] = {
    errno.ENOENT: NotFound,
    errno.ENOTDIR: NotFound,
    errno.EACCES: Forbidden,
    errno.EPERM: Forbidden,
    errno.EROFS: Forbidden,
    errno.EEXIST: Conflict,
    errno.ENOTEMPTY: Conflict,
    errno.ENOSPC: NoSpace,
    errno.EDQUOT: NoSpace,
    errno.EFBIG: NoSpace,
    errno.ENAMETOOLONG: BadRequest,
    errno.EINVAL: BadRequest,
    errno.ELOOP: BadRequest,
    errno.EISDIR: BadRequest,
    errno.EXDEV: BadRequest,
    errno.EMLINK: BadRequest,
    errno.EBUSY: Conflict,
}

_MESSAGES = {
    errno.ENOSPC: "No space left on the device",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EEXIST: "Already exists",
    errno.ENOTEMPTY: "Already exists and is not empty",
}


def error_from_oserror(error: OSError, path: str) -> FilesError:
    """The :class:`FilesError` for an :class:`OSError` met while working on ``path``.

    The message names the path and the operating system's reason, e.g.
    ``"Permission denied: /home/bob/secret"``; unknown errnos become a 500 with the same text.
    """
    cls = _ERRNO_CLASSES.get(error.errno or 0, FilesError)
    reason = _MESSAGES.get(error.errno or 0) or error.strerror or str(error)
    return cls(f"{reason}: {path}")
