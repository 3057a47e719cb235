"""The web shell in a real jupyter-server with jupyter_server_terminals: the page, the ssh host
check (allowed, refused, injection attempts), where a shell starts, and a terminal that keeps
running and is replayed to a websocket that attaches again."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from harness import terminal_output_until
from ondemand_shell.app import PUN_TERMINAL_DEFAULTS
from ondemand_shell.terminals import (
    HostRefused,
    ReplayBuffer,
    allowed_hosts,
    check_host,
    make_env_removals,
    make_shell_argv,
    make_ssh_argv,
    start_directory,
)

# jupyter_server_terminals' websocket handler authenticates in its own get(), undecorated: with
# allow_unauthenticated_access False (as in a PUN) jupyter-server warns, and pytest.ini's
# "error" would make the extension fail to load.
pytestmark = pytest.mark.filterwarnings("ignore:Extension endpoints without @allow_unauthenticated")

LOGIN_HOST = "login1.hpc.example.org"
PATTERNS = ["login*.hpc.example.org", "dtn.example.org"]

#: ssh stand-in: prints the arguments it got, then waits (a real ssh would need a server).
FAKE_SSH = ["/bin/sh", "-c", 'echo "SSH-ARGV:$*"; exec sleep 60', "ssh"]


@pytest.fixture
def clusters_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "clusters.d"
    directory.mkdir()
    (directory / "hpc.yml").write_text(
        f"v2:\n  metadata:\n    title: HPC\n  login:\n    host: {LOGIN_HOST}\n"
        "  job:\n    adapter: local\n"
    )
    return directory


@pytest.fixture
def jp_server_config(dashboard_config, clusters_dir):
    config = dashboard_config
    config.ServerApp.jpserver_extensions["jupyter_server_terminals"] = True
    config.ServerApp.jpserver_extensions["ondemand_shell"] = True
    config.ShellExtensionApp.clusters_dir = str(clusters_dir)
    config.ShellExtensionApp.ssh_hosts = PATTERNS
    config.ShellExtensionApp.ssh_command = FAKE_SSH
    return config


@pytest.fixture
def manager(jp_serverapp):
    manager = jp_serverapp.web_app.settings["terminal_manager"]
    yield manager
    for term in list(manager.terminals.values()):
        term.ptyproc.kill(9)


def context_of(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="shell-context">(.*?)</script>', html)
    assert match, html
    return json.loads(match.group(1))


async def fetch_error(fetch, *parts, **kwargs) -> HTTPClientError:
    with pytest.raises(HTTPClientError) as excinfo:
        await fetch(*parts, **kwargs)
    return excinfo.value


async def create(jp_fetch, **body) -> dict:
    response = await jp_fetch(
        "api", "ondemand", "shell", "terminals", method="POST", body=json.dumps(body)
    )
    assert response.code == 201
    return json.loads(response.body)


# -- the page --------------------------------------------------------------------------------


async def test_shell_page_renders_the_terminal_page(jp_fetch, jp_base_url):
    response = await jp_fetch("shell/", params={"cwd": "/tmp"})
    html = response.body.decode()
    assert response.code == 200
    assert 'aria-current="page"' in html and "bi-terminal" in html
    assert "@xterm/xterm/lib/xterm.js" in html and "@xterm/addon-fit/lib/addon-fit.js" in html
    assert "@xterm/xterm/css/xterm.css" in html and "ondemand_shell/shell.js" in html
    assert context_of(html) == {
        "host": None,
        "cwd": "/tmp",
        "create_url": f"{jp_base_url}api/ondemand/shell/terminals",
        "terminals_url": f"{jp_base_url}api/terminals",
        "websocket_url": f"{jp_base_url}terminals/websocket",
        "shell_url": f"{jp_base_url}shell/",
    }
    # the login hosts on offer, each an ssh link
    assert f'href="{jp_base_url}shell/ssh/{LOGIN_HOST}"' in html
    assert f'href="{jp_base_url}shell/ssh/dtn.example.org"' in html


async def test_shell_without_slash_redirects(jp_fetch, jp_base_url):
    response = await jp_fetch(
        "shell", params={"cwd": "/tmp"}, follow_redirects=False, raise_error=False
    )
    assert response.code == 302
    assert response.headers["Location"] == f"{jp_base_url}shell/?cwd=%2Ftmp"


async def test_shell_static_files_are_served(jp_fetch):
    for name in ("shell.js", "shell.css"):
        response = await jp_fetch("static", "ondemand_shell", name)
        assert response.code == 200


async def test_terminals_get_the_pun_culling_defaults(manager):
    assert manager.cull_inactive_timeout == PUN_TERMINAL_DEFAULTS["cull_inactive_timeout"]
    assert manager.cull_interval == PUN_TERMINAL_DEFAULTS["cull_interval"]


# -- ssh hosts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [LOGIN_HOST, "LOGIN1.HPC.example.org", "login7.hpc.example.org", "dtn.example.org"],
)
async def test_ssh_page_for_allowed_hosts(jp_fetch, host):
    response = await jp_fetch("shell", "ssh", host)
    html = response.body.decode()
    assert context_of(html)["host"] == host.lower()
    assert f"ssh {host.lower()}" in html


REFUSED = [
    "evil.example.org",
    "host;id",
    f"{LOGIN_HOST};id",
    f"{LOGIN_HOST} id",
    f"{LOGIN_HOST}\nid",
    "-oProxyCommand=id",
    "-oProxyCommand=touch /tmp/pwned login1.hpc.example.org",
    f"me@{LOGIN_HOST}",
    "$(id).hpc.example.org",
    "`id`",
    "login1.hpc.example.org/../x",
    "lögin1.hpc.example.org",
    "\u212aogin1.hpc.example.org",  # KELVIN SIGN, whose lower() is an ASCII k
    "ｌogin1.hpc.example.org",  # fullwidth l
    "login..hpc.example.org",
    "login1.hpc.example.org.evil.com",
    "x" * 300,
]


@pytest.mark.parametrize("host", REFUSED)
async def test_ssh_page_refuses_other_hosts_with_a_message(jp_fetch, host, manager):
    error = await fetch_error(jp_fetch, "shell", "ssh", host)
    assert error.code == 403
    html = error.response.body.decode()
    assert 'id="shell-error"' in html and "shell-context" not in html
    assert ("not allowed from the web shell" in html) or ("is not a host name" in html)
    assert LOGIN_HOST in html  # what may be opened instead
    assert manager.terminals == {}


async def test_ssh_page_without_a_host_says_so(jp_fetch):
    error = await fetch_error(jp_fetch, "shell", "ssh", "")
    assert error.code == 400
    assert "No host given" in error.response.body.decode()


@pytest.mark.parametrize("host", [*REFUSED, ""])
async def test_api_refuses_other_hosts_and_starts_nothing(jp_fetch, host, manager):
    error = await fetch_error(
        jp_fetch,
        "api/ondemand/shell/terminals",
        method="POST",
        body=json.dumps({"host": host}),
    )
    assert error.code == (403 if host else 400)
    assert json.loads(error.response.body)["status"] == "error"
    assert manager.terminals == {}


@pytest.mark.parametrize("body", [[], {"host": ["a"]}, {"cwd": 3}])
async def test_api_refuses_malformed_bodies(jp_fetch, body, manager):
    error = await fetch_error(
        jp_fetch, "api/ondemand/shell/terminals", method="POST", body=json.dumps(body)
    )
    assert error.code == 400
    assert manager.terminals == {}


async def test_ssh_terminal_runs_ssh_with_the_host_after_double_dash(
    jp_fetch, jp_ws_fetch, manager
):
    model = await create(jp_fetch, host="LOGIN3.hpc.example.org")
    assert model["host"] == "login3.hpc.example.org"
    ws = await jp_ws_fetch("terminals", "websocket", model["name"])
    assert "SSH-ARGV:-- login3.hpc.example.org" in await terminal_output_until(
        ws, r"SSH-ARGV:.*\r\n", 15
    )
    ws.close()


def test_check_host_pure():
    assert check_host("Login1.HPC.example.org", [LOGIN_HOST], []) == LOGIN_HOST
    assert check_host("login22.hpc.example.org", [], PATTERNS) == "login22.hpc.example.org"
    assert check_host("10.0.0.5", [], ["10.0.0.*"]) == "10.0.0.5"
    for host in REFUSED:
        with pytest.raises(HostRefused):
            check_host(host, [LOGIN_HOST], PATTERNS)
    with pytest.raises(HostRefused, match="not allowed"):
        check_host("login1.hpc.example.org", [], [])  # nothing configured: nothing allowed
    with pytest.raises(HostRefused, match="not a host name"):
        check_host("-oProxyCommand=id", [], ["*"])  # not even a catch-all lets an option in


def test_offered_hosts_and_argv():
    assert allowed_hosts([LOGIN_HOST], PATTERNS) == ["dtn.example.org", LOGIN_HOST]
    assert make_ssh_argv(["ssh", "-o", "ServerAliveInterval=60"], "h1") == [
        "ssh",
        "-o",
        "ServerAliveInterval=60",
        "--",
        "h1",
    ]
    assert make_shell_argv("/bin/zsh") == ["/bin/zsh", "-l"]
    assert make_shell_argv("") == ["/bin/sh", "-l"]


def test_the_pun_only_environment_is_removed():
    assert make_env_removals(
        ["PATH", "HOME", "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "ONDEMAND_HUB_PUN_TMP"]
    ) == {
        "JPY_API_TOKEN": None,
        "JUPYTERHUB_API_TOKEN": None,
        "JUPYTER_SERVER_ROOT": None,
        "JUPYTER_SERVER_URL": None,
        "ONDEMAND_HUB_PUN_TMP": None,
    }


# -- where a shell starts --------------------------------------------------------------------


def test_start_directory(tmp_path):
    home = str(tmp_path)
    (tmp_path / "file").write_text("x")
    assert start_directory(None, home) == (home, None)
    assert start_directory(str(tmp_path / "a" / ".."), home) == (home, None)
    assert start_directory("/usr/bin", home) == ("/usr/bin", None)
    for bad, says in [
        (str(tmp_path / "missing"), "is not a folder"),
        (str(tmp_path / "file"), "is not a folder"),
        ("relative/dir", "absolute path"),
        ("/tmp\0/x", "absolute path"),
    ]:
        path, message = start_directory(bad, home)
        assert path == home and says in message


async def test_shell_starts_in_the_requested_folder(jp_fetch, jp_ws_fetch, manager, tmp_path):
    folder = tmp_path / "project dir"
    folder.mkdir()
    model = await create(jp_fetch, cwd=str(folder))
    assert (model["cwd"], model["message"], model["host"]) == (str(folder), None, None)
    ws = await jp_ws_fetch("terminals", "websocket", model["name"])
    await ws.write_message(json.dumps(["stdin", "echo PWD=$(pwd)\r"]))
    assert f"PWD={folder}" in await terminal_output_until(ws, r"PWD=/[^\r\n]*\r\n", 15)
    ws.close()
    # the login shell of the account, as a login shell
    cmdline = Path(f"/proc/{manager.terminals[model['name']].ptyproc.pid}/cmdline").read_bytes()
    assert cmdline.split(b"\0")[:2] == [pwd.getpwuid(os.getuid()).pw_shell.encode(), b"-l"]


async def test_a_bad_folder_starts_in_home_with_a_message(jp_fetch, manager, tmp_path):
    model = await create(jp_fetch, cwd=str(tmp_path / "gone"))
    # fresh random names, never terminado's reusable "1", "2" ...
    assert re.fullmatch(r"[0-9a-f]{12}", model["name"])
    assert (await create(jp_fetch))["name"] != model["name"]
    assert model["cwd"] == pwd.getpwuid(os.getuid()).pw_dir
    assert "is not a folder" in model["message"]


# -- persistence -----------------------------------------------------------------------------


async def test_reattaching_replays_output_and_the_process_keeps_running(
    jp_fetch, jp_ws_fetch, manager
):
    model = await create(jp_fetch)
    first = await jp_ws_fetch("terminals", "websocket", model["name"])
    await first.write_message(json.dumps(["stdin", "echo marker-$((6*7)); sleep 300 &\r"]))
    await terminal_output_until(first, r"marker-42", 15)
    first.close()
    await asyncio.sleep(0.5)
    assert model["name"] in manager.terminals  # the websocket went, the terminal stays

    second = await jp_ws_fetch("terminals", "websocket", model["name"])
    setup = json.loads(await second.read_message())
    assert setup == ["setup", {}]
    assert "marker-42" in await terminal_output_until(second, r"marker-42", 15)  # the replay
    await second.write_message(json.dumps(["stdin", "jobs; echo done-$((1+1))\r"]))
    output = await terminal_output_until(second, r"done-2", 15)
    assert "sleep 300" in output  # the same shell, with its background job
    second.close()


def test_replay_buffer_is_bounded_by_characters():
    buffer = ReplayBuffer(limit=10)
    for chunk in ["abc", "def", "ghij", "k"]:
        buffer.append(chunk)
    assert list(buffer) == ["def", "ghij", "k"] and buffer.size == 8
    buffer.append("0123456789XY")  # one read larger than the limit keeps its end
    assert list(buffer) == ["23456789XY"] and buffer.size == 10
    copy = buffer.copy()
    copy.popleft()
    assert list(buffer) == ["23456789XY"]  # terminado drains a copy, never the buffer
