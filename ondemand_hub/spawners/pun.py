"""PUNSpawner: every user's default server is their PUN, started through ondemand-stage.

The hub never starts user processes itself: it asks the privileged helper, directly when the hub
runs as root (the embedded default) or through one sudo rule when it runs as a service account.
The PUN outlives the hub: ``poll`` asks the helper, so a restarted hub finds every PUN again.

The PUN has no TCP port: the proxy reaches its nginx on a Unix socket (``http+unix://`` URL),
in a directory only the user and the proxy's group may enter.
"""

from __future__ import annotations

import asyncio
import os
import pwd
from urllib.parse import quote

from jupyterhub.spawner import Spawner, SpawnException
from traitlets import default

from .stage import StageClient, StageCommandError

_PASSED_ENV_PREFIX = "JUPYTERHUB_"


def socket_url(path: str) -> str:
    """The ``http+unix://`` URL of a Unix socket, as JupyterHub and the proxy read it."""
    return "http+unix://" + quote(path, safe="")


class PUNSpawner(StageClient, Spawner):
    """Start, poll and stop a user's PUN (per-user nginx + jupyter-server) via ondemand-stage."""

    @default("server_token_scopes")
    def _default_server_token_scopes(self):
        # The PUN's sessions pages list, start and stop the user's own named servers (sessions)
        # with the PUN's token, and shares them (shares!user, read:users:name: only as far as the
        # user's own role allows); session jobs keep JupyterHub's narrower default.
        return [
            "access:servers!server",
            "users:activity!user",
            "read:servers!user",
            "servers!user",
            "shares!user",
            "read:users:shares!user",
            "read:users:name",
        ]

    @default("default_url")
    def _default_default_url(self):
        return "/dashboard"

    @default("ip")
    def _default_ip(self):
        return "127.0.0.1"

    @default("disable_user_config")
    def _default_disable_user_config(self):
        # A user's ~/.jupyter config must not be able to break or reroute the portal pages.
        return True

    @default("start_timeout")
    def _default_start_timeout(self):
        return 30

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pun_groups: list[int] = []
        self.pun_socket: str | None = None

    @property
    def server(self):
        """JupyterHub's record of the PUN, told to connect to nginx's socket: the record
        itself keeps only proto, host and port, and ``http+unix://<path>:80`` is no socket
        path the proxy could use."""
        server = Spawner.server.fget(self)
        if server is not None and self.pun_socket:
            url = socket_url(self.pun_socket)
            if not server.connect_url.startswith(url + "/"):
                server.connect_url = url
        return server

    @server.setter
    def server(self, server):
        Spawner.server.fset(self, server)

    # -- state saved in the hub DB: a restarted hub knows which socket and groups the PUN has --

    def load_state(self, state):
        super().load_state(state)
        self.pun_groups = list(state.get("groups", []))
        # state saved before sockets has a "port" instead: poll then reports the PUN gone
        self.pun_socket = state.get("socket")

    def get_state(self):
        state = super().get_state()
        if self.pun_groups:
            state["groups"] = self.pun_groups
            state["socket"] = self.pun_socket
        return state

    def clear_state(self):
        super().clear_state()
        self.pun_groups = []
        self.pun_socket = None

    # -- talking to ondemand-stage --

    async def run_stage(self, *args: str, stdin: dict | None = None) -> dict:
        """Run ``ondemand-stage pun <args>``; return its JSON or raise StageCommandError."""
        return await self.call_stage(["pun", *args], stdin)

    def current_groups(self) -> list[int]:
        """The user's supplementary groups as the system knows them now."""
        entry = pwd.getpwnam(self.user.name)
        return sorted(set(os.getgrouplist(self.user.name, entry.pw_gid)))

    def groups_changed(self) -> bool:
        """True if the running PUN was started with other groups than the user has now."""
        try:
            return bool(self.pun_groups) and self.pun_groups != self.current_groups()
        except KeyError:
            return True

    # -- the Spawner contract --

    async def start(self):
        env = {k: v for k, v in self.get_env().items() if k.startswith(_PASSED_ENV_PREFIX)}
        try:
            info = await self.run_stage("start", "--user", self.user.name, stdin={"env": env})
        except StageCommandError as e:
            self.log.warning("%s: PUN did not start: %s", self.user.name, e)
            raise SpawnException(
                f"Your dashboard could not be started: {e}", reason="pun_start"
            ) from None
        self.pun_groups = list(info["groups"])
        self.pun_socket = info["socket"]
        return socket_url(self.pun_socket)

    async def poll(self):
        """None while the PUN runs; 0 once it is gone (stopped, cleaned or crashed)."""
        try:
            info = await self.run_stage("status", "--user", self.user.name)
        except StageCommandError as e:
            # A helper that cannot answer is not proof the PUN died (batchspawner #315).
            self.log.warning("%s: PUN status unknown: %s", self.user.name, e)
            return None
        if info["running"] and self.pun_socket and info.get("socket") == self.pun_socket:
            return None
        return 0

    async def stop(self, now=False):
        try:
            await self.run_stage("stop", "--user", self.user.name)
        except StageCommandError as e:
            self.log.error("%s: PUN did not stop: %s", self.user.name, e)
            raise
        self.clear_state()

    async def progress(self):
        yield {"progress": 20, "message": f"Starting nginx and jupyter-server as {self.user.name}"}
        while True:
            await asyncio.sleep(0.5)
            yield {"progress": 60, "message": "Waiting for your dashboard to answer"}
