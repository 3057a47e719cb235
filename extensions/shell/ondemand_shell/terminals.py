"""What a web shell runs and where: the ssh host check, the starting directory, the argv of
the login shell or of ssh, and the buffer a reconnecting page is replayed from. Pure functions
(no server state), tested by equality in tests/extensions/test_shell.py."""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterable
from fnmatch import fnmatchcase

#: A host name or IPv4 address as ssh's command line takes it: ASCII letters, digits, dots and
#: hyphens, never starting with ``-`` (an ssh option) and nothing a shell would interpret.
HOST_RE = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,252})", re.ASCII)


class HostRefused(ValueError):
    """The requested ssh host is not one the web shell may open; the message says why, in
    words for the user."""


def check_host(host: str, login_hosts: Iterable[str], patterns: Iterable[str]) -> str:
    """``host`` (lower-cased) when it is a cluster's login host or matches one of the fnmatch
    ``patterns``; :class:`HostRefused` otherwise.

    The syntax is checked first, so no pattern (``*``) can let an option (``-oProxyCommand=…``),
    a user (``me@host``), a shell character or a look-alike Unicode name through.
    """
    if not host:
        raise HostRefused("No host given: choose one of the login hosts.")
    name = host.lower()
    # isascii first: str.lower() maps some non-ASCII letters to ASCII ones (KELVIN SIGN -> k)
    if not host.isascii() or not HOST_RE.fullmatch(name) or ".." in name:
        raise HostRefused(f"{host!r} is not a host name.")
    if name in {h.lower() for h in login_hosts}:
        return name
    if any(fnmatchcase(name, p.lower()) for p in patterns):
        return name
    raise HostRefused(f"ssh to {host} is not allowed from the web shell.")


def allowed_hosts(login_hosts: Iterable[str], patterns: Iterable[str]) -> list[str]:
    """The hosts a page offers as links: the login hosts, plus the patterns without wildcards."""
    hosts = {h.lower() for h in login_hosts}
    hosts.update(p.lower() for p in patterns if not any(c in p for c in "*?[") and p)
    return sorted(h for h in hosts if HOST_RE.fullmatch(h))


def start_directory(requested: str | None, home: str) -> tuple[str, str | None]:
    """Where a new shell starts: ``requested`` when it is an absolute path of an existing
    directory this account can enter, else ``home``; with a message for the user when the
    request was not honoured."""
    if not requested:
        return home, None
    if not isinstance(requested, str) or "\0" in requested or not os.path.isabs(requested):
        return home, "The folder to open the shell in must be an absolute path; opened your home."
    path = os.path.normpath(requested)
    if not os.path.isdir(path):
        return home, f"{requested} is not a folder; opened your home instead."
    if not os.access(path, os.X_OK):
        return home, f"You cannot enter {requested}; opened your home instead."
    return path, None


def make_shell_argv(login_shell: str | None) -> list[str]:
    """The user's login shell as a login shell (``-l``: reads the profile files like an ssh
    login), ``/bin/sh`` when the account has none."""
    return [login_shell or "/bin/sh", "-l"]


def make_ssh_argv(ssh_command: list[str], host: str) -> list[str]:
    """ssh to an already checked ``host``; ``--`` ends ssh's options, so even a host that
    slipped past :func:`check_host` could never be read as one."""
    return [*ssh_command, "--", host]


#: Variables of the PUN's jupyter-server that a shell should not inherit: the server's hub
#: token and settings (``JUPYTERHUB_*``, ``JPY_*``, ``JUPYTER_SERVER_*``) and the PUN's own.
#: The user could read them from their server's /proc entry; a shell that does not carry them
#: keeps them out of ``env`` output pasted into a ticket and out of programs it starts.
PUN_ONLY_ENV_PREFIXES = ("JUPYTERHUB_", "JPY_", "JUPYTER_SERVER_")
PUN_ONLY_ENV = ("JUPYTER_CONFIG_PATH", "ONDEMAND_HUB_PUN_TMP")


def make_env_removals(environ: Iterable[str]) -> dict[str, None]:
    """terminado's per-terminal ``extra_env`` that removes (value None) the PUN-only variables
    among the names in ``environ``, plus the two jupyter_server_terminals always adds."""
    names = {"JUPYTER_SERVER_ROOT", "JUPYTER_SERVER_URL"}
    names.update(n for n in environ if n.startswith(PUN_ONLY_ENV_PREFIXES) or n in PUN_ONLY_ENV)
    return dict.fromkeys(sorted(names))


class ReplayBuffer(deque[str]):
    """terminado's per-terminal output buffer (``PtyWithClients.read_buffer``), replayed to each
    websocket that (re)attaches, bounded by characters instead of terminado's 1000 reads (an
    interactive shell's reads are often one echoed key each, so 1000 reads can be a few
    screens). The oldest reads are dropped first; one read larger than ``limit`` keeps its end.
    """

    def __init__(self, items: Iterable[str] = (), limit: int = 1_000_000) -> None:
        super().__init__()
        self.limit = limit
        self.size = 0
        for item in items:
            self.append(item)

    def append(self, text: str) -> None:
        super().append(text)
        self.size += len(text)
        while self.size > self.limit and len(self) > 1:
            self.size -= len(super().popleft())
        if self.size > self.limit:
            self[0] = self[0][-self.limit :]
            self.size = len(self[0])

    def popleft(self) -> str:
        text = super().popleft()
        self.size -= len(text)
        return text

    def copy(self) -> deque[str]:  # type: ignore[override]
        """A plain deque of the buffered reads (terminado drains a copy on attach)."""
        return deque(self)
