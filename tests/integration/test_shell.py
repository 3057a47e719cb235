"""The web shell on a real hub: terminals of the user's PUN over the real websocket, through
configurable-http-proxy and the PUN's nginx. A shell survives its websocket (same output, same
running programs, as the user's uid); another user or another site's page cannot attach."""

from __future__ import annotations

import json
import pwd
import re
import time
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from harness import STAGE, ensure_account, proc_ids, run, running_hub, terminal_output_until

ACCOUNTS = {"odt-shea": "Shea-pw-6!", "odt-shaw": "Shaw-pw-7!"}


@pytest.fixture(scope="module")
def shell_accounts():
    for name, password in ACCOUNTS.items():
        ensure_account(name, password)
    yield {name: pwd.getpwnam(name) for name in ACCOUNTS}
    for name in ACCOUNTS:
        run(STAGE, "pun", "stop", "--user", name, check=False)


@pytest.fixture(scope="module")
def shell_hub(shell_accounts):
    with running_hub("shell") as hub:
        yield hub


@pytest.fixture(scope="module")
def sessions(shell_hub):
    """Both users signed in, with their PUNs up."""
    result = {}
    for name, password in ACCOUNTS.items():
        s, _ = shell_hub.login(name, password)
        shell_hub.open_dashboard(s, name)
        result[name] = s
    return result


def xsrf(session, user: str) -> str:
    return next(c.value for c in session.cookies if c.name == "_xsrf" and user in c.path)


def create_terminal(hub, session, user: str, **body) -> dict:
    page = session.get(f"{hub.url}/user/{user}/shell/", timeout=30)
    assert page.status_code == 200 and 'id="shell-context"' in page.text
    r = session.post(
        f"{hub.url}/user/{user}/api/ondemand/shell/terminals",
        json=body,
        headers={"X-XSRFToken": xsrf(session, user)},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return r.json()


async def connect(hub, owner: str, session, name: str, origin: str | None = None):
    url = hub.url.replace("http://", "ws://") + f"/user/{owner}/terminals/websocket/{name}"
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    headers = {"Cookie": cookies, "Origin": origin or hub.url}
    return await websocket_connect(HTTPRequest(url, headers=headers, connect_timeout=20))


async def type_line(ws, line: str) -> None:
    await ws.write_message(json.dumps(["stdin", line + "\r"]))


def delete_terminal(hub, session, user: str, name: str) -> None:
    session.delete(
        f"{hub.url}/user/{user}/api/terminals/{name}",
        headers={"X-XSRFToken": xsrf(session, user)},
        timeout=30,
    )


async def test_a_shell_survives_its_websocket_with_output_and_programs(
    shell_hub, sessions, shell_accounts
):
    hub, s, user = shell_hub, sessions["odt-shea"], "odt-shea"
    account = shell_accounts[user]
    counter = Path(account.pw_dir) / "shell-counter"
    counter.unlink(missing_ok=True)
    model = create_terminal(hub, s, user, cwd="/tmp")
    assert model["cwd"] == "/tmp" and model["message"] is None
    try:
        first = await connect(hub, user, s, model["name"])
        await type_line(
            first,
            "echo first-$((6*7)) in $(pwd) as $(id -un) hub-vars=$(env | grep -c ^JUPYTERHUB_); "
            "echo SHELL=$$",
        )
        output = await terminal_output_until(first, r"SHELL=\d+")
        assert f"first-42 in /tmp as {user} hub-vars=0" in output
        shell_pid = int(re.search(r"SHELL=(\d+)", output).group(1))
        await type_line(
            first,
            f"(i=0; while :; do i=$((i+1)); echo $i > {counter}; sleep 0.2; done) & echo LOOP=$!",
        )
        loop_pid = int(
            re.search(r"LOOP=(\d+)", await terminal_output_until(first, r"LOOP=\d+")).group(1)
        )
        first.close()

        # No page attached: the shell and its loop go on, as the user.
        time.sleep(1.5)
        before = int(counter.read_text())
        time.sleep(1.0)
        assert int(counter.read_text()) > before
        for pid in (shell_pid, loop_pid):
            ids = proc_ids(pid)
            assert (ids["uid"], ids["gid"]) == (account.pw_uid, account.pw_gid)
        assert Path(f"/proc/{shell_pid}/cmdline").read_bytes().split(b"\0")[:2] == [
            account.pw_shell.encode(),
            b"-l",
        ]

        # The page comes back: the same terminal, its earlier output replayed, the loop alive.
        second = await connect(hub, user, s, model["name"])
        assert json.loads(await second.read_message()) == ["setup", {}]
        assert "first-42 in /tmp" in await terminal_output_until(second, r"first-42 in /tmp")
        await type_line(second, "jobs -l; echo JOBS-$((2*5))")
        assert str(loop_pid) in await terminal_output_until(second, r"JOBS-10")
        await type_line(second, f"kill {loop_pid}")
        second.close()
    finally:
        delete_terminal(hub, s, user, model["name"])
        counter.unlink(missing_ok=True)


async def test_another_user_cannot_attach_to_or_list_a_shell(shell_hub, sessions):
    hub, shea, shaw = shell_hub, sessions["odt-shea"], sessions["odt-shaw"]
    model = create_terminal(hub, shea, "odt-shea")
    try:
        with pytest.raises(HTTPClientError) as e:
            await connect(hub, "odt-shea", shaw, model["name"], origin=hub.url)
        assert e.value.code == 403
        for path in ("api/terminals", f"api/terminals/{model['name']}", "shell/"):
            r = shaw.get(f"{hub.url}/user/odt-shea/{path}", timeout=30)
            assert r.status_code == 403, (path, r.status_code, r.url)
        r = shaw.post(
            f"{hub.url}/user/odt-shea/api/ondemand/shell/terminals",
            json={},
            headers={"X-XSRFToken": xsrf(shaw, "odt-shaw")},
            timeout=30,
        )
        assert r.status_code == 403
        # shaw's own PUN has its own terminals: none of shea's
        r = shaw.get(
            f"{hub.url}/user/odt-shaw/api/terminals",
            headers={"X-XSRFToken": xsrf(shaw, "odt-shaw")},
            timeout=30,
        )
        assert r.status_code == 200 and r.json() == []
        # the owner still can
        ws = await connect(hub, "odt-shea", shea, model["name"])
        ws.close()
    finally:
        delete_terminal(hub, shea, "odt-shea", model["name"])


async def test_a_page_of_another_site_cannot_attach(shell_hub, sessions):
    hub, s = shell_hub, sessions["odt-shea"]
    model = create_terminal(hub, s, "odt-shea")
    try:
        for origin in ("http://evil.example", hub.url.replace("127.0.0.1", "localhost")):
            with pytest.raises(HTTPClientError) as e:
                await connect(hub, "odt-shea", s, model["name"], origin=origin)
            assert e.value.code == 403, origin
    finally:
        delete_terminal(hub, s, "odt-shea", model["name"])


def test_ssh_to_other_hosts_is_refused_and_a_folder_the_user_cannot_enter_is_not_used(
    shell_hub, sessions, shell_accounts
):
    hub, s = shell_hub, sessions["odt-shea"]
    for host in ("evil.example.org", "host;id", "-oProxyCommand=id"):
        r = s.get(f"{hub.url}/user/odt-shea/shell/ssh/{host}", timeout=30)
        assert r.status_code == 403 and 'id="shell-error"' in r.text, host
    r = s.post(
        f"{hub.url}/user/odt-shea/api/ondemand/shell/terminals",
        json={"host": "evil.example.org"},
        headers={"X-XSRFToken": xsrf(s, "odt-shea")},
        timeout=30,
    )
    assert r.status_code == 403 and "not allowed" in r.json()["message"]
    # a cross-site form or script cannot start one: no XSRF token, no terminal
    r = s.post(f"{hub.url}/user/odt-shea/api/ondemand/shell/terminals", json={}, timeout=30)
    assert r.status_code == 403

    model = create_terminal(hub, s, "odt-shea", cwd="/root")
    try:
        assert model["cwd"] == shell_accounts["odt-shea"].pw_dir
        assert model["message"] == "You cannot enter /root; opened your home instead."
    finally:
        delete_terminal(hub, s, "odt-shea", model["name"])
