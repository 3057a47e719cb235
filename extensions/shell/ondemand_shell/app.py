"""The web shell: a terminal in the browser over jupyter-server's terminals, as the
user; ``ssh`` to the clusters' login hosts."""

from __future__ import annotations

import os
import pwd
import secrets
from typing import Any

from traitlets import Int, List, Unicode

from ondemand_dashboard.portalapp import PortalExtensionApp

from . import api, handlers
from .paths import STATIC_DIR, TEMPLATES_DIR
from .terminals import (
    ReplayBuffer,
    allowed_hosts,
    check_host,
    make_env_removals,
    make_shell_argv,
    make_ssh_argv,
    start_directory,
)

#: The PUN's defaults for jupyter_server_terminals' culling (``TerminalManager``), applied
#: unless the site's jupyter_server_config.py sets them: a shell that has printed nothing and
#: been sent nothing for 8 hours is ended (SIGHUP, then SIGTERM/SIGKILL); checked every 5 min.
#: jupyter_server_terminals' own default (0) never ends one.
PUN_TERMINAL_DEFAULTS = {"cull_inactive_timeout": 8 * 3600, "cull_interval": 300}


class ShellExtensionApp(PortalExtensionApp):
    """The web shell."""

    name = "ondemand_shell"
    extension_url = "/shell/"
    package_templates_dir = TEMPLATES_DIR
    package_static_dir = STATIC_DIR

    ssh_hosts = List(
        Unicode(),
        help="""More hosts ``shell/ssh/<host>`` may open, as fnmatch patterns matched against
        the lower-cased host name, e.g. ``["login*.hpc.example.org", "dtn01.example.org"]``.

        The login hosts of clusters.d are always allowed; every other host is refused. Patterns
        without wildcards are offered as links on the Shell page. Default: none.
        """,
    ).tag(config=True)

    ssh_command = List(
        Unicode(),
        ["ssh"],
        help="""The ssh client and its options, as an argv list; the web shell appends
        ``-- <host>``. E.g. ``["/usr/bin/ssh", "-o", "ServerAliveInterval=60"]``.""",
    ).tag(config=True)

    replay_chars = Int(
        1_000_000,
        help="""Characters of each shell's latest output kept to redraw it in a page that
        (re)attaches: a reload or a reconnect shows at least this much of the earlier output.

        Memory is about 4 bytes per character per shell; the default (1 M characters, about
        10,000 full lines) costs at most ~4 MB per shell. jupyter_server_terminals' own
        terminals (``api/terminals``) keep terminado's last 1000 reads instead.
        """,
    ).tag(config=True)

    def initialize_settings(self) -> None:
        self.init_terminal_defaults()

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers.default_handlers)
        self.handlers.extend(api.default_handlers)

    def init_terminal_defaults(self) -> None:
        """Give jupyter_server_terminals' manager the PUN's culling defaults, unless configured.

        Runs after jupyter_server_terminals is loaded (extensions load in name order) and before
        any terminal exists: the manager reads the values when it creates its first one.
        """
        manager = self.terminal_manager
        if manager is None:
            self.log.warning("shell: jupyter_server_terminals is not enabled; no web shell")
            return
        configured = self.serverapp.config.get("TerminalManager", {}) if self.serverapp else {}
        for name, value in PUN_TERMINAL_DEFAULTS.items():
            if name not in configured:
                setattr(manager, name, value)
        self.log.info(
            "shell: idle terminals end after %s s (checked every %s s)",
            manager.cull_inactive_timeout,
            manager.cull_interval,
        )

    @property
    def terminal_manager(self) -> Any:
        """jupyter_server_terminals' TerminalManager, None when terminals are disabled."""
        if self.serverapp is None:
            return None
        return self.serverapp.web_app.settings.get("terminal_manager")

    # -- hosts and terminals -----------------------------------------------------------------

    def login_hosts(self) -> list[str]:
        """The login hosts of the (visible and hidden) clusters in clusters.d."""
        return [c.login_host for c in self.all_clusters() if c.login_host]

    def check_host(self, host: str) -> str:
        """``host`` normalised if the shell may ssh to it, else :class:`HostRefused`."""
        return check_host(host, self.login_hosts(), self.ssh_hosts)

    def offered_hosts(self) -> list[str]:
        return allowed_hosts(self.login_hosts(), self.ssh_hosts)

    @staticmethod
    def account() -> pwd.struct_passwd:
        """The account this PUN runs as (its home and login shell)."""
        return pwd.getpwuid(os.getuid())

    def create_terminal(self, cwd: str | None, host: str | None) -> dict[str, Any]:
        """Start a terminal: the login shell in ``cwd`` (checked; home otherwise), or ssh to
        ``host`` (checked: :class:`HostRefused`). Returns the terminal's model plus where it
        started and a message when ``cwd`` was not honoured."""
        manager = self.terminal_manager
        account = self.account()
        home = account.pw_dir or os.path.expanduser("~")
        if host is not None:
            host = self.check_host(host)
            argv, (directory, message) = make_ssh_argv(self.ssh_command, host), (home, None)
        else:
            argv = make_shell_argv(account.pw_shell)
            directory, message = start_directory(cwd, home)
        # A fresh name, never one of an ended terminal: terminado's own ("1", "2", ...) are
        # reused, and a page left open on an ended shell would re-attach to a stranger one.
        name = secrets.token_hex(6)
        while name in manager.terminals:
            name = secrets.token_hex(6)
        model = manager.create(
            name=name,
            shell_command=argv,
            cwd=directory,
            extra_env=make_env_removals(os.environ),
        )
        term = manager.terminals[model["name"]]
        # Nothing was read yet (reads run on the event loop, after this returns).
        term.read_buffer = ReplayBuffer(term.read_buffer, limit=self.replay_chars)
        self.log.info("shell: terminal %s: %s in %s", model["name"], argv, directory)
        return {**model, "cwd": directory, "host": host, "message": message}
