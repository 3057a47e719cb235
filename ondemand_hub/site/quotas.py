"""Disk quota and allocation balance warnings from Open OnDemand's JSON files (version 1).

A site's cron job writes one file for every user (OOD recommends every 5 minutes for quotas,
daily for balances); the dashboard reads it and warns the user whose usage is above a threshold.
The formats are OOD's, so a site's existing files work unchanged::

    {"version": 1, "timestamp": 1525361263, "quotas": [
      {"type": "user", "user": "alice", "path": "/home/alice",
       "total_block_usage": 1000, "block_limit": 2000, "total_file_usage": 5, "file_limit": 10},
      {"type": "fileset", "user": "alice", "path": "/project/p1",
       "block_usage": 500, "total_block_usage": 1000, "block_limit": 2000,
       "file_usage": 1, "total_file_usage": 5, "file_limit": 10}]}

    {"version": 1, "timestamp": 1525361263, "config": {"unit": "RU", "project_type": "project"},
     "balances": [{"user": "alice", "value": 10}, {"user": "alice", "project": "p1", "value": 3}]}

``type`` defaults to ``user``; a ``fileset`` entry is repeated for each user of the volume
(``block_usage``/``file_usage`` are that user's share). In addition to OOD, an entry of type
``group`` names a Unix ``group`` instead of a user and applies to its members. Blocks are
1 KiB; a limit of 0 means no limit. A file that is not valid JSON or not version 1 is refused
whole; an entry with a missing key or a wrong type is skipped; both are reported as errors that
name the source (the caller logs them), never raised to the page.

Sources are paths or ``http(s)://`` URLs; ``%{user}`` in a source is replaced by the user name
(as OOD's ``OOD_QUOTA_PATH``). Everything here is pure except :func:`read_source`.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: OOD's default: warn when usage is at or above 95% of the limit.
DEFAULT_QUOTA_THRESHOLD = 0.95
#: OOD's default: warn when a balance is below 0.
DEFAULT_BALANCE_THRESHOLD = 0.0
QUOTA_TYPES = ("user", "fileset", "group")
#: Largest quota or balance file read (a site-wide file of every user's quotas).
MAX_SOURCE_BYTES = 64 * 1024 * 1024


class QuotaFileError(ValueError):
    """A quota or balance source cannot be used at all; the message names it."""


@dataclass(frozen=True)
class Quota:
    """One quota entry that applies to a user."""

    source: str
    type: str  # "user", "fileset" or "group"
    path: str
    owner: str  # the user, or the group of a "group" entry
    block_usage: int  # KiB used under the quota (the whole volume for a fileset)
    block_limit: int  # KiB; 0 = no limit
    file_usage: int
    file_limit: int  # 0 = no limit
    user_block_usage: int | None = None  # a fileset: the user's own share
    user_file_usage: int | None = None
    timestamp: float | None = None  # when the file was written (seconds since the epoch)

    @property
    def block_fraction(self) -> float | None:
        return self.block_usage / self.block_limit if self.block_limit else None

    @property
    def file_fraction(self) -> float | None:
        return self.file_usage / self.file_limit if self.file_limit else None


@dataclass(frozen=True)
class Balance:
    """One allocation balance of a user (``project`` None) or of one of their projects."""

    source: str
    user: str
    project: str | None
    value: float
    unit: str = ""
    project_type: str = "project"
    timestamp: float | None = None


@dataclass(frozen=True)
class QuotaWarning:
    """What the dashboard says about one resource over its threshold."""

    kind: str  # "block", "file" or "balance"
    path: str  # the quota's path, or the project ("" for the user's own balance)
    percent: int | None  # usage in percent of the limit (quotas), None for balances
    message: str


def expand_source(source: str, user: str) -> str:
    """``source`` with ``%{user}`` replaced by ``user`` (OOD's substitution)."""
    return source.replace("%{user}", user)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _document(text: str | bytes, source: str, key: str) -> tuple[dict, list]:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise QuotaFileError(f"{source}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise QuotaFileError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if data.get("version") != 1 or isinstance(data.get("version"), bool):
        raise QuotaFileError(f"{source}: key 'version': expected 1, got {data.get('version')!r}")
    entries = data.get(key)
    if not isinstance(entries, list):
        raise QuotaFileError(f"{source}: key '{key}': expected a list, got {entries!r}")
    timestamp = data.get("timestamp")
    if timestamp is not None and not _is_number(timestamp):
        raise QuotaFileError(f"{source}: key 'timestamp': expected a number, got {timestamp!r}")
    return data, entries


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(entry: Mapping[str, Any], key: str, required: bool = True) -> int | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"key {key!r}: expected a whole number >= 0, got {value!r}")
    return value


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"key {key!r}: expected a non-empty string, got {value!r}")
    return value


def _quota(entry: Any, source: str, timestamp: float | None) -> Quota:
    if not isinstance(entry, dict):
        raise ValueError(f"expected an object, got {entry!r}")
    kind = entry.get("type", "user")
    if kind not in QUOTA_TYPES:
        raise ValueError(f"key 'type': expected one of {', '.join(QUOTA_TYPES)}, got {kind!r}")
    fileset = kind == "fileset"
    return Quota(
        source=source,
        type=kind,
        path=_text(entry, "path"),
        owner=_text(entry, "group" if kind == "group" else "user"),
        block_usage=_count(entry, "total_block_usage") or 0,
        block_limit=_count(entry, "block_limit") or 0,
        file_usage=_count(entry, "total_file_usage") or 0,
        file_limit=_count(entry, "file_limit") or 0,
        user_block_usage=_count(entry, "block_usage", required=fileset),
        user_file_usage=_count(entry, "file_usage", required=fileset),
        timestamp=timestamp,
    )


def parse_quota_file(text: str | bytes, source: str) -> tuple[list[Quota], list[str]]:
    """Every valid entry of a quota file, and an error per skipped entry.

    Raises :class:`QuotaFileError` when the file as a whole is unusable.
    """
    data, entries = _document(text, source, "quotas")
    quotas, errors = [], []
    for i, entry in enumerate(entries):
        try:
            quotas.append(_quota(entry, source, data.get("timestamp")))
        except ValueError as e:
            errors.append(f"{source}: quotas[{i}]: {e}")
    return quotas, errors


def parse_balance_file(text: str | bytes, source: str) -> tuple[list[Balance], list[str]]:
    """Every valid entry of a balance file, and an error per skipped entry.

    Raises :class:`QuotaFileError` when the file as a whole is unusable.
    """
    data, entries = _document(text, source, "balances")
    config = data.get("config")
    config = {} if config is None else config
    if not isinstance(config, dict) or not all(
        isinstance(config.get(k, ""), str) for k in ("unit", "project_type")
    ):
        raise QuotaFileError(f"{source}: key 'config': expected unit and project_type strings")
    balances, errors = [], []
    for i, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise ValueError(f"expected an object, got {entry!r}")
            if not _is_number(entry.get("value")):
                raise ValueError(f"key 'value': expected a number, got {entry.get('value')!r}")
            project = _text(entry, "project") if "project" in entry else None
            balances.append(
                Balance(
                    source=source,
                    user=_text(entry, "user"),
                    project=project,
                    value=entry["value"],
                    unit=config.get("unit", ""),
                    project_type=config.get("project_type") or "project",
                    timestamp=data.get("timestamp"),
                )
            )
        except ValueError as e:
            errors.append(f"{source}: balances[{i}]: {e}")
    return balances, errors


def quotas_for(quotas: Iterable[Quota], user: str, groups: Iterable[str] = ()) -> list[Quota]:
    """The entries that apply to ``user``: theirs, and group entries of their ``groups``."""
    groups = frozenset(groups)
    return [q for q in quotas if (q.owner in groups if q.type == "group" else q.owner == user)]


def format_kib(kib: int) -> str:
    """``1536`` → ``"1.5 MiB"`` (quota blocks are 1 KiB)."""
    value, units = float(kib), ["KiB", "MiB", "GiB", "TiB", "PiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    unit = units[0]
    return f"{value:.0f} {unit}" if value >= 100 or unit == "KiB" else f"{value:.1f} {unit}"


def quota_warnings(quotas: Sequence[Quota], threshold: float) -> list[QuotaWarning]:
    """A warning per quota and resource (blocks, files) used at or above ``threshold``."""
    warnings = []
    for q in quotas:
        whose = {"user": "Your", "fileset": "The shared", "group": f"Group {q.owner}'s"}[q.type]
        checks = (
            ("block", q.block_fraction, format_kib(q.block_usage), format_kib(q.block_limit)),
            ("file", q.file_fraction, f"{q.file_usage:,} files", f"{q.file_limit:,}"),
        )
        for kind, fraction, used, limit in checks:
            if fraction is None or fraction < threshold:
                continue
            percent = math.floor(fraction * 100)
            what = "disk space" if kind == "block" else "file count"
            message = f"{whose} {what} quota on {q.path} is {percent}% used: {used} of {limit}."
            if q.type == "fileset" and kind == "block" and q.user_block_usage is not None:
                message += f" Yours: {format_kib(q.user_block_usage)}."
            if q.type == "fileset" and kind == "file" and q.user_file_usage is not None:
                message += f" Yours: {q.user_file_usage:,} files."
            warnings.append(QuotaWarning(kind, q.path, percent, message))
    return warnings


def balance_warnings(
    balances: Iterable[Balance], user: str, threshold: float
) -> list[QuotaWarning]:
    """A warning per balance of ``user`` (their own, or a project's) below ``threshold``."""
    warnings = []
    for b in balances:
        if b.user != user or b.value >= threshold:
            continue
        amount = f"{b.value:g}{' ' + b.unit if b.unit else ''}"
        owner = f"The {b.project_type} {b.project}'s" if b.project else "Your"
        warnings.append(
            QuotaWarning("balance", b.project or "", None, f"{owner} balance is low: {amount}.")
        )
    return warnings


def read_source(path: str, max_bytes: int = MAX_SOURCE_BYTES) -> bytes:
    """The bytes of a local quota or balance file; :class:`QuotaFileError` naming it when it
    cannot be read or is larger than ``max_bytes``. A FIFO is refused, never opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise QuotaFileError(f"{path}: cannot read: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise QuotaFileError(f"{path}: not a regular file")
        if st.st_size > max_bytes:
            raise QuotaFileError(f"{path}: larger than {max_bytes} bytes")
        return f.read(max_bytes + 1)
