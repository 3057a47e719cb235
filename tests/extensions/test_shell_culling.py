"""Idle web shells end: with the site's own TerminalManager culling settings (which the shell
extension's PUN defaults must not override), an idle terminal is ended and its page would get
404 for it, while a busy one stays."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import HTTPClientError

# jupyter_server_terminals' websocket handler authenticates in its own get() (test_shell.py)
pytestmark = pytest.mark.filterwarnings("ignore:Extension endpoints without @allow_unauthenticated")


@pytest.fixture
def jp_server_config(dashboard_config):
    config = dashboard_config
    config.ServerApp.jpserver_extensions["jupyter_server_terminals"] = True
    config.ServerApp.jpserver_extensions["ondemand_shell"] = True
    config.TerminalManager.cull_inactive_timeout = 2
    config.TerminalManager.cull_interval = 1
    return config


async def create(jp_fetch) -> str:
    response = await jp_fetch(
        "api", "ondemand", "shell", "terminals", method="POST", body=json.dumps({})
    )
    return json.loads(response.body)["name"]


async def test_site_culling_settings_win_and_idle_shells_end(jp_fetch, jp_ws_fetch, jp_serverapp):
    manager = jp_serverapp.web_app.settings["terminal_manager"]
    assert (manager.cull_inactive_timeout, manager.cull_interval) == (2, 1)
    idle = await create(jp_fetch)
    busy = await create(jp_fetch)
    ws = await jp_ws_fetch("terminals", "websocket", busy)
    await ws.write_message(json.dumps(["stdin", "while :; do echo tick; sleep 0.3; done\r"]))
    try:
        for _ in range(100):
            if idle not in manager.terminals:
                break
            await asyncio.sleep(0.1)
        assert idle not in manager.terminals
        with pytest.raises(HTTPClientError) as e:
            await jp_fetch("api", "terminals", idle)
        assert e.value.code == 404  # what the page asks before re-attaching
        assert busy in manager.terminals  # it prints: not idle
    finally:
        ws.close()
        for term in list(manager.terminals.values()):
            term.ptyproc.kill(9)
