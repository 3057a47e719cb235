"""Validation of the user a PUN is for: the first thing every sub-command does.

The name is checked against an anchored pattern before it is used for anything (a path, a log
line, a lookup); then the account must exist, have a uid of at least ``min_uid``, a login
shell that is not in the disabled list, and must be neither locked nor expired in /etc/shadow.

Locked means what ``passwd -l`` / ``usermod -L`` make: a ``!`` put before a password hash. A
field that is only ``!``, ``!!`` or ``*`` means "no local password" (Debian's and RHEL's
``useradd`` default), which sites that log in through Kerberos, SSSD or keys rely on: not locked.
Expired means the account's expiry date (``usermod -e``, ``chage -E``; ``usermod -L``'s manual
says to set it to lock the whole account) is today or earlier, as pam_unix counts. Accounts not
in /etc/shadow (a directory's) are disabled in the directory, which PAM asks at login.
"""

from __future__ import annotations

import os
import pwd
import re
import time
from dataclasses import dataclass

from .config import StageConfig
from .errors import InvalidUserError

MAX_NAME_LENGTH = 32
SHADOW_PATH = "/etc/shadow"


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
            f"user {name!r} is a system account: it has uid {entry.pw_uid}, "
            f"below min_uid {config.min_uid}"
        )
    if entry.pw_shell in config.disabled_shells:
        raise InvalidUserError(
            f"user {name!r} is disabled: it has a disabled login shell ({entry.pw_shell})"
        )
    refusal = shadow_refusal(read_shadow(name), int(time.time() // 86400))
    if refusal:
        raise InvalidUserError(f"user {name!r} is {refusal}")
    groups = tuple(sorted(set(os.getgrouplist(name, entry.pw_gid))))
    return PunUser(name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, entry.pw_shell)


def read_shadow(name: str, path: str = SHADOW_PATH) -> list[str] | None:
    """The fields of ``name``'s line in /etc/shadow; None when it has none (or no file)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name:
                    return fields
    except FileNotFoundError:
        return None
    return None


def shadow_refusal(fields: list[str] | None, today: int) -> str:
    """Why a shadow entry refuses the account ("locked: ...", "expired: ..."), or ""."""
    if not fields or len(fields) < 2:
        return ""
    password = fields[1]
    if password.startswith("!") and password.lstrip("!") not in ("", "*"):
        return "locked: its password is locked (passwd -l)"
    expire = fields[7] if len(fields) > 7 else ""
    if expire.isdigit() and today >= int(expire):
        day = time.strftime("%Y-%m-%d", time.gmtime(int(expire) * 86400))
        return f"expired: the account expired on {day}"
    return ""
