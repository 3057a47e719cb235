"""HTML pages of the web shell: ``shell/`` (the login shell, ``?cwd=<folder>`` to start
there) and ``shell/ssh/<host>`` (ssh to a login host). Both are one xterm.js page
(``shell.js``) that creates its terminal through :mod:`.api` and attaches to it over
jupyter_server_terminals' websocket; ``?term=<name>`` re-attaches to a running one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_escape, url_path_join
from tornado import web

from ondemand_dashboard.handlers import PortalPageHandler

from .terminals import HostRefused

if TYPE_CHECKING:
    from .app import ShellExtensionApp


class ShellMixin:
    settings: dict[str, Any]

    @property
    def shell_app(self) -> ShellExtensionApp:
        return self.settings["ondemand_shell"]  # type: ignore[no-any-return]


class ShellPageHandler(ShellMixin, PortalPageHandler):
    """The terminal page; 400/403 with the hosts on offer for an ssh host that is refused."""

    nav_id = "shell"

    @web.authenticated
    @authorized
    def get(self, host: str | None = None) -> None:
        app = self.shell_app
        hosts = app.offered_hosts()
        error = None
        if host is not None:
            try:
                host = app.check_host(host)
            except HostRefused as e:
                self.log.warning("%s: ssh host refused: %r", self.current_user.username, host)
                self.set_status(400 if not host else 403)
                error = str(e)
        if app.terminal_manager is None:
            self.set_status(503)
            error = "Terminals are not enabled on this server (jupyter_server_terminals)."
        self.render_page(
            "shell.html",
            error=error,
            host=None if error else host,
            hosts=[
                {"name": h, "url": url_path_join(self.base_url, "shell/ssh", url_escape(h))}
                for h in hosts
            ],
            context={
                "host": None if error else host,
                "cwd": self.get_query_argument("cwd", None),
                "create_url": url_path_join(self.base_url, "api/ondemand/shell/terminals"),
                "terminals_url": url_path_join(self.base_url, "api/terminals"),
                "websocket_url": url_path_join(self.base_url, "terminals/websocket"),
                "shell_url": url_path_join(self.base_url, "shell/"),
            },
            shell_static_url=self.static_url,
        )


class ShellRedirectHandler(ShellMixin, PortalPageHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        query = f"?{self.request.query}" if self.request.query else ""
        self.redirect(url_path_join(self.base_url, "shell/") + query)


default_handlers = [
    (r"/shell", ShellRedirectHandler),
    (r"/shell/", ShellPageHandler),
    (r"/shell/ssh/?()", ShellPageHandler),
    (r"/shell/ssh/(.+)", ShellPageHandler),
]
