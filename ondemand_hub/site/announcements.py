"""Site announcements: ``announcements.d/*.md|*.yml`` drop-ins parsed into validated objects.

The format follows Open OnDemand's announcements, so an OOD admin's files work unchanged:

* ``<name>.md`` -- the whole file is a Markdown message, shown as a dismissible warning;
* ``<name>.yml`` / ``<name>.yaml`` -- a mapping with ``msg`` (Markdown, required), ``type``
  (``info``, ``success``, ``warning`` or ``danger``), ``dismissible`` and ``required`` (booleans),
  and, beyond OOD, ``expires`` (a date or date-time after which the announcement is not shown).

Everything here is pure: the extension reads the directory on each page load and logs the error
strings :func:`load_announcements` returns; nothing raises out of the loader for a bad file.

This module also holds the one Markdown renderer and sanitiser of the site drop-ins
(:func:`render_markdown`), which :mod:`ondemand_hub.site.motd` shares.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nh3
from markdown_it import MarkdownIt

from .dropin import SiteFileError, check_keys, list_dropins, parse_yaml, read_site_text

ANNOUNCEMENT_TYPES = ("info", "success", "warning", "danger")
ANNOUNCEMENT_KEYS = ("msg", "type", "dismissible", "required", "expires")
MARKDOWN_SUFFIXES = frozenset({".md"})
YAML_SUFFIXES = frozenset({".yml", ".yaml"})

# Links may point at web pages, mail addresses and relative portal URLs; anything else
# (javascript:, data:, vbscript:, file:) loses its href.
_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_LINK_REL = "noopener noreferrer"
# Raw HTML is allowed in the Markdown (OOD admins use it) and then sanitised by nh3, which
# keeps its allowlist of harmless tags and attributes and drops script/style with their content.
_markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


class AnnouncementError(SiteFileError):
    """An announcement file is invalid: the message names the file, the key and what was
    expected."""


@dataclass(frozen=True)
class Announcement:
    """One announcement, ready to render.

    ``id`` is the file stem plus a short hash of the file's content, so editing a file makes
    it show again to users who dismissed the old text. ``html`` is sanitised HTML. ``expires``
    is a :class:`datetime.date` (shown through that whole day), a :class:`datetime.datetime`
    (shown until that moment; naive means the server's local time) or None.
    """

    id: str
    type: str
    html: str
    dismissible: bool
    required: bool
    expires: datetime.date | None
    source: str


def render_markdown(text: str) -> str:
    """Render Markdown written by a site admin to sanitised HTML.

    No script or style elements, no ``on*`` event attributes, no ``javascript:`` (or other
    non-web) links; every link gets ``rel="noopener noreferrer"``.
    """
    return nh3.clean(_markdown.render(text), url_schemes=set(_URL_SCHEMES), link_rel=_LINK_REL)


def announcement_id(path: Path, text: str) -> str:
    """The id of an announcement: file stem + the first 12 hex digits of sha256(content)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return f"{path.stem}-{digest}"


def is_expired(expires: datetime.date | None, today: datetime.date) -> bool:
    """Whether an announcement with this ``expires`` value is past its end at ``today``.

    ``today`` may be a date or an (aware or naive) date-time. A date ``expires`` keeps the
    announcement through that day; a date-time one keeps it until that moment.
    """
    if expires is None:
        return False
    if isinstance(expires, datetime.datetime):
        if not isinstance(today, datetime.datetime):
            return today > expires.date()
        # astimezone() reads a naive value as the server's local time, so admins can write
        # "2025-06-01 18:00" without an offset.
        return today.astimezone() >= expires.astimezone()
    if isinstance(today, datetime.datetime):
        today = today.date()
    return today > expires


def parse_announcement(path: Path, text: str, today: datetime.date) -> Announcement | None:
    """Parse the text of one announcement file.

    The suffix of ``path`` picks the format (``.md`` or ``.yml``/``.yaml``). Returns None when
    the announcement has expired at ``today``; raises :class:`AnnouncementError` when the file
    is invalid.
    """
    path = Path(path)
    if path.suffix in MARKDOWN_SUFFIXES:
        fields: dict[str, Any] = {"msg": text}
    elif path.suffix in YAML_SUFFIXES:
        fields = _load_yaml_mapping(path, text)
    else:
        raise AnnouncementError(
            f"{path}: expected a file name ending in .md, .yml or .yaml, got {path.name!r}"
        )
    expires = _check_expires(path, fields.get("expires"))
    if is_expired(expires, today):
        return None
    return Announcement(
        id=announcement_id(path, text),
        type=_check_type(path, fields.get("type", "warning")),
        html=render_markdown(_check_msg(path, fields.get("msg"))),
        dismissible=_check_bool(path, "dismissible", fields.get("dismissible", True)),
        required=_check_bool(path, "required", fields.get("required", False)),
        expires=expires,
        source=str(path),
    )


def load_announcements(
    directory: Path | str, today: datetime.date
) -> tuple[list[Announcement], list[str]]:
    """Read every ``*.md``, ``*.yml`` and ``*.yaml`` file of ``directory``, sorted by name.

    Returns the valid, unexpired announcements and one error string per file that could not be
    used. A missing directory means no announcements, not an error. Hidden files (editor
    back-ups such as ``.motd.md.swp`` or ``.#notice.md``) are skipped.
    """
    paths, errors = list_dropins(
        Path(directory), MARKDOWN_SUFFIXES | YAML_SUFFIXES, "announcements"
    )
    if errors:
        return [], errors
    announcements: list[Announcement] = []
    for path in paths:
        try:
            announcement = parse_announcement(path, read_site_text(path), today)
        except FileNotFoundError:
            continue  # removed between listing and reading
        except SiteFileError as e:
            errors.append(str(e))
            continue
        if announcement is not None:
            announcements.append(announcement)
    return announcements, errors


def _load_yaml_mapping(path: Path, text: str) -> dict[str, Any]:
    data = parse_yaml(path, text, AnnouncementError)
    if not isinstance(data, Mapping):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise AnnouncementError(f"{path}: expected a mapping with at least key 'msg', got {got}")
    return check_keys(path, data, ANNOUNCEMENT_KEYS, error=AnnouncementError)


def _check_msg(path: Path, value: Any) -> str:
    if value is None:
        raise AnnouncementError(f"{path}: key 'msg' is required: expected a Markdown message")
    if not isinstance(value, str):
        raise AnnouncementError(f"{path}: key 'msg': expected a Markdown string, got {value!r}")
    if not value.strip():
        raise AnnouncementError(f"{path}: key 'msg': expected a Markdown message, got nothing")
    return value


def _check_type(path: Path, value: Any) -> str:
    if value not in ANNOUNCEMENT_TYPES:
        raise AnnouncementError(
            f"{path}: key 'type': expected one of {', '.join(ANNOUNCEMENT_TYPES)}, got {value!r}"
        )
    return str(value)


def _check_bool(path: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise AnnouncementError(f"{path}: key {key!r}: expected true or false, got {value!r}")
    return value


def _check_expires(path: Path, value: Any) -> datetime.date | None:
    """Accept a YAML date/timestamp or an ISO 8601 date or date-time string."""
    if value is None or isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        for parse in (datetime.date.fromisoformat, datetime.datetime.fromisoformat):
            try:
                return parse(value.strip())
            except ValueError:
                continue
    raise AnnouncementError(
        f"{path}: key 'expires': expected a date (2025-06-01) or date-time "
        f"(2025-06-01T18:00:00+02:00), got {value!r}"
    )
