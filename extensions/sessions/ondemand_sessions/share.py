"""Sharing a session with a collaborator, through JupyterHub's sharing (JupyterHub ≥ 5).

A share gives one user ``access:servers!server=<owner>/<session>``: they reach the session's
URL through hub OAuth like the owner, and nothing else (not its folder, not the owner's PUN or
other sessions). It can be taken back at any time; the session's server re-checks a visitor's
permissions at least every ``HubOAuth.cache_max_age`` seconds (10 s in ondemand-session-server),
so a revoked collaborator is refused within that time.

JSON API, under ``{base_url}api/ondemand/sessions/<name>/shares``:

* ``GET``: ``{"status": "ok", "shares": [{"user": ..., "created": ...}], "url": <session URL>}``
* ``POST {"user": <name>}``: share; 400 naming ``user`` for a name that is not a login of this
  system, is the owner, or has never signed in to the portal (the hub knows only those).
* ``DELETE .../shares/<user>``: take the share back (also when there was none).
* ``GET {base_url}api/ondemand/shared``: sessions others share with this user,
  ``{"status": "ok", "shared": [{"owner", "name", "url", "ready"}]}``.

The hub side needs ``shares!user`` and ``read:users:name`` in the users' role and in the PUN's
token, which also has ``read:users:shares!user`` (jupyterhub_config.py,
PUNSpawner.server_token_scopes).
"""

from __future__ import annotations

import pwd
import re
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .api import NAME_RE, SessionsAPIBase
from .hub import SERVER_NAME, HubError

#: Login names a share may name (POSIX portable, as useradd accepts them by default).
USER_RE = r"[a-z_][a-z0-9_.-]{0,31}"


class ShareBase(SessionsAPIBase):
    def session_path(self, name: str) -> tuple[str, str, str]:
        if not SERVER_NAME.fullmatch(name):
            raise HubError(404, f"No session {name!r}")
        return ("shares", self.current_user.username, name)

    async def require_session(self, name: str) -> dict[str, Any]:
        model = (await self.hub().servers()).get(name)
        if model is None:
            raise HubError(404, f"No session {name!r}")
        return model


class SharesHandler(ShareBase):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        client = self.hub()
        model = await self.require_session(name)
        reply = await client.request("GET", client._url(*self.session_path(name)))
        shares = []
        for item in (reply or {}).get("items", []):
            user = (item.get("user") or {}).get("name")
            if user:
                shares.append({"user": user, "created": item.get("created_at")})
        shares.sort(key=lambda s: s["user"])
        self.finish({"status": "ok", "shares": shares, "url": model.get("url")})

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = self.get_json_body()
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or not re.fullmatch(USER_RE, user):
            raise HubError(400, "Enter the login name of the person to share with", "user")
        me = self.current_user.username
        if user == me:
            raise HubError(400, "This session is yours already", "user")
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise HubError(400, f"There is no user {user!r} on this system", "user") from None
        client = self.hub()
        await self.require_session(name)
        try:
            await client.request("POST", client._url(*self.session_path(name)), {"user": user})
        except HubError as e:
            if e.status == 400 and "No such user" in e.message:
                raise HubError(
                    400,
                    f"{user} has not signed in to the portal yet: ask them to sign in once, "
                    "then share again",
                    "user",
                ) from None
            raise
        self.log.info("%s: shared session %s with %s", me, name, user)
        self.set_status(201)
        self.finish({"status": "ok", "user": user})


class ShareHandler(ShareBase):
    @web.authenticated
    @authorized
    async def delete(self, name: str, user: str) -> None:
        client = self.hub()
        await self.require_session(name)
        await client.request("PATCH", client._url(*self.session_path(name)), {"user": user})
        self.log.info(
            "%s: stopped sharing session %s with %s", self.current_user.username, name, user
        )
        self.finish({"status": "ok"})


class SharedWithMeHandler(SessionsAPIBase):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        client = self.hub()
        reply = await client.request("GET", client._url("users", client.user, "shared"))
        shared = []
        for item in (reply or {}).get("items", []):
            server = item.get("server") or {}
            owner = (server.get("user") or {}).get("name")
            if owner and server.get("name"):
                shared.append(
                    {
                        "owner": owner,
                        "name": server["name"],
                        "url": server.get("url"),
                        "ready": bool(server.get("ready")),
                    }
                )
        shared.sort(key=lambda s: (s["owner"], s["name"]))
        self.finish({"status": "ok", "shared": shared})


share_handlers = [
    (r"/api/ondemand/shared", SharedWithMeHandler),
    (rf"/api/ondemand/sessions/({NAME_RE})/shares", SharesHandler),
    (rf"/api/ondemand/sessions/({NAME_RE})/shares/({USER_RE})", ShareHandler),
]
