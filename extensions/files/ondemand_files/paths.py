"""Paths and names as the files extension accepts them: parsing, the allowlist, favourites.

Paths are ``str`` as Python's ``os`` functions take them: bytes that are not UTF-8 are carried
as lone surrogates U+DC80..U+DCFF (``surrogateescape``), so every name the OS can hold survives a
round trip through URLs and JSON. :func:`display` makes such a string printable in HTML, and
:func:`quote_path` percent-encodes the original bytes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote

from .errors import BadRequest, Forbidden

#: Longest name (one path component) Linux file systems accept, in bytes.
NAME_MAX = 255

#: Where our package's templates and static files are.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
TEMPLATES_DIR = os.path.join(PACKAGE_DIR, "templates")
STATIC_DIR = os.path.join(PACKAGE_DIR, "static")

_FAVORITE_VARIABLE = re.compile(r"\$(?:\{(USER|HOME)\}|(USER|HOME)\b)")


def fs_bytes(path: str) -> bytes:
    """``path`` as the bytes the OS sees; :class:`BadRequest` for characters no file system
    name can contain (lone surrogates outside the surrogateescape range)."""
    try:
        return os.fsencode(path)
    except UnicodeEncodeError as e:
        raise BadRequest(f"Not a valid path: {display(path)!r}") from e


def display(text: str) -> str:
    """``text`` with undecodable bytes shown as U+FFFD, for HTML pages and log lines."""
    if not _has_surrogates(text):
        return text
    try:
        return os.fsencode(text).decode("utf-8", "replace")
    except UnicodeEncodeError:  # surrogates no file name can hold
        return text.encode("utf-8", "replace").decode("utf-8")


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_path(raw: object) -> str:
    """The normalised absolute path for ``raw`` (from a URL or a JSON body).

    ``..`` and ``.`` components and repeated slashes are resolved lexically, as a browser would;
    the allowlist then judges the real path. Raises :class:`BadRequest` for a relative path,
    a NUL byte or a non-string.
    """
    if not isinstance(raw, str) or not raw:
        raise BadRequest("Expected an absolute path")
    if not raw.startswith("/"):
        raise BadRequest(f"Not an absolute path: {raw!r}")
    if "\0" in raw:
        raise BadRequest("A path cannot contain a NUL byte")
    fs_bytes(raw)
    path = os.path.normpath(raw)
    # POSIX keeps a leading "//"; Linux gives it no meaning.
    return "/" + path.lstrip("/")


def check_name(name: object) -> str:
    """Return ``name`` if it is a legal new file or directory name, else raise
    :class:`BadRequest` saying why: empty, ``.`` or ``..``, ``/``, NUL, over 255 bytes."""
    if not isinstance(name, str) or name == "":
        raise BadRequest("A name cannot be empty")
    if name in (".", ".."):
        raise BadRequest(f"{name!r} is not allowed as a name")
    if "/" in name:
        raise BadRequest(f"A name cannot contain '/': {display(name)!r}")
    if "\0" in name:
        raise BadRequest("A name cannot contain a NUL byte")
    size = len(fs_bytes(name))
    if size > NAME_MAX:
        raise BadRequest(f"A name can be at most {NAME_MAX} bytes long, this one is {size}")
    return name


def quote_path(path: str) -> str:
    """Percent-encode every byte of ``path`` except the unreserved characters and ``/``.

    Spaces, ``%``, ``?``, ``#``, newlines and bytes that are not UTF-8 all survive; nginx decodes
    the result exactly once (X-Accel-Redirect), as does tornado for our own URLs.
    """
    return quote(fs_bytes(path), safe="/")


def parent_of(path: str) -> str | None:
    """The parent directory of an absolute normalised path; None for ``/``."""
    return None if path == "/" else os.path.dirname(path)


def breadcrumbs(path: str) -> list[tuple[str, str]]:
    """``(name, path)`` of ``/`` and of each ancestor of ``path``, ending with ``path``."""
    crumbs = [("/", "/")]
    current = ""
    for part in path.split("/"):
        if part:
            current = f"{current}/{part}"
            crumbs.append((part, current))
    return crumbs


def expand_favorite(template: str, user: str, home: str) -> str | None:
    """``template`` with ``$USER``/``${USER}`` and ``$HOME``/``${HOME}`` replaced; the
    normalised absolute path, or None when the result is not absolute."""
    values = {"USER": user, "HOME": home}
    expanded = _FAVORITE_VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], template)
    if not expanded.startswith("/") or "\0" in expanded:
        return None
    return parse_path(expanded)


@dataclass(frozen=True)
class Allowlist:
    """The admin's allowlist of roots, with real-path semantics.

    An empty allowlist allows everything (the OS still decides). Otherwise a path is allowed
    only when its ``realpath`` is one of the roots' real paths or below one, so neither ``..``
    nor a symbolic link leads out. This narrows what the portal shows; it is not a boundary
    against the user's own processes, which run as the same uid.
    """

    roots: tuple[str, ...] = ()

    @classmethod
    def from_paths(cls, paths: list[str]) -> Allowlist:
        """Resolve the configured roots once (a root that is itself a symlink counts as its
        target)."""
        return cls(tuple(os.path.realpath(p) for p in paths))

    def allows(self, path: str, *, follow: bool = True) -> bool:
        """Whether ``path`` is inside a root. With ``follow=False`` a final symbolic link is
        judged by where it sits, not where it points (delete, rename and move act on the link).
        """
        if not self.roots:
            return True
        if follow or path == "/":
            real = os.path.realpath(path)
        else:
            real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        return any(real == root or real.startswith(root.rstrip("/") + "/") for root in self.roots)

    def check(self, path: str, *, follow: bool = True) -> str:
        """Return ``path`` if :meth:`allows` it, else raise :class:`Forbidden`."""
        if not self.allows(path, follow=follow):
            raise Forbidden(f"Outside the directories this portal may access: {path}")
        return path
