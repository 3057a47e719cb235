"""A small async client of JupyterHub's REST API, used with the user's own token.

The PUN runs with ``JUPYTERHUB_API_URL``, ``JUPYTERHUB_API_TOKEN`` and ``JUPYTERHUB_USER`` in its
environment. Sessions are the user's *named servers*: listing them is ``GET /users/<u>``
(``include_stopped_servers``), starting one ``POST /users/<u>/servers/<name>`` with
``{"user_options": {...}}``, stopping and deleting ``DELETE /users/<u>/servers/<name>`` (with
``{"remove": true}`` to delete). Hub errors become :class:`HubError` with a status and a message
fit to show; the spawner's own 400 (an option it refused) passes its message through.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

#: JupyterHub 6's named-server names: 1-30 of [a-z0-9-], starting with a letter.
SERVER_NAME = re.compile(r"[a-z][a-z0-9-]{0,29}")
_INVALID_OPTION = re.compile(r"Invalid option '([a-z][a-z0-9_]*)'")


class HubError(Exception):
    """A hub request failed; ``status`` is the HTTP status to reply with, ``message`` is fit to
    show, ``field`` names the form field a 400 is about (when the spawner named one)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def server_name(app_id: str, taken: Iterable[str]) -> str:
    """``<app>-<n>`` for the lowest ``n`` above every taken name of that form (never reused,
    so a new session never lands in an old session's folder)."""
    prefix = re.sub(r"[^a-z0-9-]", "-", app_id.lower()).strip("-") or "app"
    if not prefix[0].isalpha():
        prefix = "app-" + prefix
    prefix = prefix[:24].rstrip("-")  # room for "-" and up to 5 digits
    pattern = re.compile(re.escape(prefix) + r"-([0-9]{1,9})")
    highest = 0
    for name in taken:
        match = pattern.fullmatch(name)
        if match:
            highest = max(highest, int(match.group(1)))
    number = str(highest + 1)
    return f"{prefix}-{number}"


class HubClient:
    """The user's view of the hub REST API."""

    def __init__(self, api_url: str, token: str, user: str, timeout: float = 30.0):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.user = user
        self.timeout = timeout

    @classmethod
    def from_environ(cls, user: str | None = None) -> HubClient:
        """The client the PUN's environment describes; :class:`HubError` 503 outside a hub."""
        url = os.environ.get("JUPYTERHUB_API_URL", "")
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        user = os.environ.get("JUPYTERHUB_USER") or user or ""
        if not (url and token and user):
            raise HubError(503, "Sessions need JupyterHub: this server was not started by a hub")
        return cls(url, token, user)

    def _url(self, *parts: str) -> str:
        return self.api_url + "/" + "/".join(quote(p, safe="") for p in parts)

    def server_path(self, name: str) -> tuple[str, ...]:
        if not SERVER_NAME.fullmatch(name):
            raise HubError(400, f"Not a session name: {name!r}")
        return ("users", self.user, "servers", name)

    async def request(self, method: str, url: str, body: Any = None) -> Any:
        """The parsed JSON reply (None when empty), or :class:`HubError`."""
        request = HTTPRequest(
            url,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=self.timeout,
            follow_redirects=False,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            raise _hub_error(e.code, e.response.body if e.response else b"") from None
        except OSError as e:
            raise HubError(502, f"JupyterHub did not answer: {e.strerror or e}") from None
        if not response.body:
            return None
        try:
            return json.loads(response.body)
        except ValueError:
            raise HubError(502, "JupyterHub sent a reply that is not JSON") from None

    async def servers(self) -> dict[str, dict[str, Any]]:
        """The user's named servers (the default server, the PUN, left out), stopped ones too."""
        url = self._url("users", self.user) + "?include_stopped_servers=1"
        model = await self.request("GET", url)
        servers = (model or {}).get("servers") or {}
        return {name: s for name, s in servers.items() if name}

    async def start(self, name: str, user_options: dict[str, Any]) -> None:
        await self.request(
            "POST", self._url(*self.server_path(name)), {"user_options": user_options}
        )

    async def stop(self, name: str, remove: bool = False) -> None:
        await self.request("DELETE", self._url(*self.server_path(name)), {"remove": remove})

    def progress_url(self, name: str) -> str:
        return self._url(*self.server_path(name), "progress")


def _hub_error(code: int, body: bytes) -> HubError:
    message = ""
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            message = str(data.get("message") or "")
    except ValueError:
        pass
    if code == 400:
        match = _INVALID_OPTION.search(message)
        field = match.group(1) if match else None
        if field and match:
            message = message[match.end() :].lstrip(": ") or message
        return HubError(400, message or "JupyterHub refused the request", field)
    if code in (401, 403):
        return HubError(403, "JupyterHub refused this server's token (it needs the servers scope)")
    if code == 404:
        return HubError(404, message or "No such session")
    if code == 599:
        return HubError(504, "JupyterHub did not answer in time")
    if code in (429, 503):
        return HubError(503, message or "JupyterHub is busy; try again in a moment")
    return HubError(502, f"JupyterHub failed: {message or code}")
