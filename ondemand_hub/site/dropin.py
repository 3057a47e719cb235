"""What every site drop-in directory shares (announcements.d, clusters.d, apps): listing the
files, reading them as UTF-8, parsing YAML with the line of an error, and refusing unknown keys
with a message that names the file, the key and what was expected."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml


class SiteFileError(ValueError):
    """A site drop-in file cannot be read or is invalid; the message starts with its path."""


def list_dropins(
    directory: Path, suffixes: Iterable[str], what: str
) -> tuple[list[Path], list[str]]:
    """The files of ``directory`` with one of ``suffixes``, sorted by name, hidden files (editor
    back-ups) skipped; a missing directory is empty, an unreadable one is an error string."""
    wanted = frozenset(suffixes)
    try:
        names = sorted(
            entry.name
            for entry in directory.iterdir()
            if not entry.name.startswith(".") and entry.suffix in wanted and entry.is_file()
        )
    except FileNotFoundError:
        return [], []
    except OSError as e:
        return [], [f"{directory}: cannot list {what}: {e.strerror or e}"]
    return [directory / name for name in names], []


def read_site_text(path: Path) -> str:
    """Return the text of a site drop-in file, which must be UTF-8.

    Raises :class:`FileNotFoundError` when the file does not exist (callers decide whether
    that is normal) and :class:`SiteFileError` when it cannot be read or decoded.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise SiteFileError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SiteFileError(
            f"{path}: expected UTF-8 text, got byte 0x{data[e.start]:02x} at offset {e.start}"
        ) from e


def parse_yaml(path: Path, text: str, error: type[SiteFileError] = SiteFileError) -> Any:
    """``yaml.safe_load`` with an error that names the file and the line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise error(f"{path}: invalid YAML{line}: {problem}") from e


def check_keys(
    path: Path,
    data: Mapping[Any, Any],
    allowed: Iterable[str],
    prefix: str = "",
    error: type[SiteFileError] = SiteFileError,
) -> dict[str, Any]:
    """``data`` as a dict if every key is in ``allowed``; else an error naming the unknown keys
    (``prefix`` places nested keys: ``v2.job.``)."""
    allowed = tuple(allowed)
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        keys = ", ".join(repr(prefix + key) for key in unknown)
        raise error(
            f"{path}: unknown key{'s' if len(unknown) > 1 else ''} {keys}: "
            f"expected only {', '.join(allowed)}"
        )
    return dict(data)
