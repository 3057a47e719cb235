"""JSON API of the web shell: ``POST {base_url}api/ondemand/shell/terminals`` with
``{"cwd": "<absolute folder>"}`` (the login shell, started there when it is a folder the user
can enter, else in the home folder with a ``message``) or ``{"host": "<login host>"}`` (ssh
to it; 403 ``{"status": "error", "message"}`` for a host that is not allowed).

201 ``{"status": "ok", "name", "cwd", "host", "message", "last_activity"}``. The page then
attaches to ``{base_url}terminals/websocket/<name>`` (jupyter_server_terminals); listing,
reading and ending terminals is jupyter_server_terminals' ``api/terminals``.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ondemand_dashboard.api import PortalAPIHandler

from .handlers import ShellMixin
from .terminals import HostRefused

#: jupyter_server_terminals' authorization resource: creating a terminal is running code.
AUTH_RESOURCE = "terminals"


class TerminalCreateHandler(ShellMixin, PortalAPIHandler):
    """Start a terminal of the web shell."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def post(self) -> None:
        user = self.current_user.username
        body: Any = self.get_json_body()
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise web.HTTPError(400, "Expected a JSON object")
        cwd, host = body.get("cwd"), body.get("host")
        if cwd is not None and not isinstance(cwd, str):
            raise web.HTTPError(400, "cwd must be a string")
        if host is not None and not isinstance(host, str):
            raise web.HTTPError(400, "host must be a string")
        if self.shell_app.terminal_manager is None:
            raise web.HTTPError(503, "Terminals are not enabled on this server")
        try:
            model = self.shell_app.create_terminal(cwd, host)
        except HostRefused as e:
            self.log.warning("%s: ssh host refused: %r", user, host)
            raise web.HTTPError(403 if host else 400, "%s", str(e)) from e
        self.log.info("%s: started terminal %s", user, model["name"])
        self.set_status(201)
        self.finish({"status": "ok", **model})


default_handlers = [
    (r"/api/ondemand/shell/terminals", TerminalCreateHandler),
]
