"""The user's portal settings file, ``~/.config/ondemand-hub/settings.json``.

A JSON object owned by the user (the PUN runs as the user). The dashboard keeps
``{"dismissed_announcements": [<id>, ...]}`` in it; other keys are preserved untouched so later
extensions can store their own settings in the same file. Writes are atomic (a temporary file in
the same directory, then ``os.replace``) with mode 0600 in a 0700 directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

DISMISSED_KEY = "dismissed_announcements"


class UserSettingsError(ValueError):
    """The settings file exists but cannot be used; the message starts with its path."""


def read_user_settings(path: Path | str) -> dict[str, Any]:
    """Return the settings stored at ``path``; an empty dict when the file does not exist.

    Raises :class:`UserSettingsError` when the file cannot be read, is not a JSON object, or
    holds a ``dismissed_announcements`` value that is not a list of strings.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise UserSettingsError(f"{path}: cannot read: {e}") from e
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserSettingsError(f"{path}: invalid JSON: {e}") from e
    if not isinstance(settings, dict):
        raise UserSettingsError(f"{path}: expected a JSON object, got {type(settings).__name__}")
    dismissed = settings.get(DISMISSED_KEY, [])
    if not isinstance(dismissed, list) or not all(isinstance(i, str) for i in dismissed):
        raise UserSettingsError(f"{path}: key {DISMISSED_KEY!r}: expected a list of strings")
    return settings


def write_user_settings(path: Path | str, settings: dict[str, Any]) -> None:
    """Atomically replace the settings file at ``path`` with ``settings``.

    The parent directory is created with mode 0700 when missing; the file gets mode 0600.
    Raises :class:`OSError` when the directory or file cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600 in the target directory, so os.replace is atomic.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(settings, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def dismissed_ids(settings: dict[str, Any]) -> frozenset[str]:
    """The announcement ids the user dismissed or acknowledged."""
    return frozenset(settings.get(DISMISSED_KEY, []))


def with_dismissed(
    settings: dict[str, Any], announcement_id: str, current_ids: frozenset[str]
) -> dict[str, Any]:
    """A copy of ``settings`` with ``announcement_id`` added to the dismissed ids.

    Ids of announcements that no longer exist (files removed, edited or expired) are dropped,
    so the list does not grow forever.
    """
    kept = sorted((dismissed_ids(settings) & current_ids) | {announcement_id})
    return {**settings, DISMISSED_KEY: kept}
