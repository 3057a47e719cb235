"""Validation of the user a PUN is for: the first thing every sub-command does.

The name is checked against an anchored pattern before it is used for anything (a path, a log
line, a lookup); then the account must exist, have a uid of at least ``min_uid`` and a login
shell that is not in the disabled list.
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass

from .config import StageConfig
from .errors import InvalidUserError

MAX_NAME_LENGTH = 32


@dataclass(frozen=True)
class PunUser:
    """A local account that may have a PUN."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str


def check_name(name: str, config: StageConfig) -> str:
    """Refuse a name that does not match the configured anchored pattern."""
    if not isinstance(name, str) or not name:
        raise InvalidUserError("user name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidUserError(f"user name is longer than {MAX_NAME_LENGTH} characters")
    # fullmatch: '$' in a pattern would still accept a trailing newline with re.match
    if not re.fullmatch(config.user_regex, name):
        raise InvalidUserError(f"user name {name!r} does not match {config.user_regex}")
    return name


def validate_user(name: str, config: StageConfig) -> PunUser:
    """Return the account behind ``name`` or raise InvalidUserError saying why it is refused."""
    check_name(name, config)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise InvalidUserError(f"user {name!r} does not exist") from None
    if entry.pw_uid < config.min_uid:
        raise InvalidUserError(
            f"user {name!r} has uid {entry.pw_uid}, below min_uid {config.min_uid}"
        )
    if entry.pw_shell in config.disabled_shells:
        raise InvalidUserError(f"user {name!r} has a disabled login shell ({entry.pw_shell})")
    groups = tuple(sorted(set(os.getgrouplist(name, entry.pw_gid))))
    return PunUser(name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, entry.pw_shell)
