"""One origin per user (``JupyterHub.subdomain_host``) end to end, with real accounts: the hub at
``portal.localhost``, Uma's PUN and sessions at ``odt-uma.portal.localhost``, Ulf's at
``odt-ulf.portal.localhost`` (libnss-myhostname resolves ``*.localhost`` here, as browsers do).

Login, the dashboard and its links to the hub, Files downloads and uploads, the shell's websocket,
sessions on the local cluster (JupyterLab's page and kernel websocket, the Desktop's VNC
handshake through noVNC's websocket, VS Code through a NAMED FAKE code-server — see
``harness.FAKE_CODE_SERVER`` for why), sharing (Ulf opens Uma's session on her origin) and
logout. The browser attack these origins defeat is in tests/e2e/test_hostile_origin.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from harness import (
    STAGE,
    api_token,
    ensure_account,
    fake_code_server,
    run,
    running_hub,
    server_model,
    terminal_output_until,
    wait_for,
)

UMA, ULF = "odt-uma", "odt-ulf"
PASSWORDS = {UMA: "Uma-pw-21!", ULF: "Ulf-pw-22!"}
SESSIONS = ("lab", "desk", "code")


@pytest.fixture(scope="module")
def sub_hub(accounts):
    for name, password in PASSWORDS.items():
        ensure_account(name, password)
    tag = f"/var/tmp/ondemand-hub-test-{os.getpid()}-subdomains"
    clusters = Path(f"{tag}-clusters.d")  # empty: sessions run on the built-in local cluster
    clusters.mkdir(exist_ok=True)
    env = {"ONDEMAND_HUB_CLUSTERS_DIR": str(clusters)}
    try:
        with fake_code_server(), running_hub("subdomains", subdomains=True, env=env) as hub:
            yield hub
    finally:
        for name in PASSWORDS:
            run(STAGE, "pun", "stop", "--user", name, check=False)
        shutil.rmtree(clusters, ignore_errors=True)


@pytest.fixture(scope="module")
def uma(sub_hub):
    s, reply = sub_hub.login(UMA, PASSWORDS[UMA])
    assert reply.status_code == 302, sub_hub.log_tail()
    sub_hub.open_dashboard(s, UMA)
    token = api_token(sub_hub, s, UMA, "test_subdomains")
    yield s, token
    for name in SESSIONS:  # end what a failed test left running, through the hub
        requests.delete(
            f"{sub_hub.url}/hub/api/users/{UMA}/servers/{name}",
            json={"remove": True},
            headers=token,
            timeout=60,
        )


@pytest.fixture(scope="module")
def ulf(sub_hub):
    s, reply = sub_hub.login(ULF, PASSWORDS[ULF])
    assert reply.status_code == 302, sub_hub.log_tail()
    sub_hub.open_dashboard(s, ULF)
    return s


def xsrf(session: requests.Session, user: str, server: str = "") -> str:
    """The _xsrf cookie of ``user``'s PUN, or of their session ``server``."""
    path = f"/user/{user}/{server + '/' if server else ''}"
    return next(c.value for c in session.cookies if c.name == "_xsrf" and c.path == path)


def cookie_header(session: requests.Session, host: str) -> str:
    """The Cookie header a browser sends to ``host``: its own cookies and the hub's
    parent-domain session id."""
    return "; ".join(
        f"{c.name}={c.value}"
        for c in session.cookies
        if c.domain in (host, "." + host.split(".", 1)[1])
    )


async def websocket(hub, session, user: str, path: str, origin: str | None = None, **kw):
    base = hub.user_url(user)
    host = base.split("://", 1)[1].split(":")[0]
    headers = {"Cookie": cookie_header(session, host), "Origin": origin or base}
    url = base.replace("http://", "ws://") + path
    return await websocket_connect(HTTPRequest(url, headers=headers, connect_timeout=20), **kw)


def test_each_user_on_their_own_origin_and_the_hub_on_the_bare_host(sub_hub, uma, ulf):
    hub, (s, _) = sub_hub, uma
    home = f"{hub.user_url(UMA)}/user/{UMA}/"
    assert hub.user_url(UMA) == f"http://{UMA}.portal.localhost:{hub.port}"
    page = s.get(f"{home}dashboard", timeout=30)
    assert page.status_code == 200 and page.url == f"{home}dashboard"
    # links to the hub name the hub's host: its cookies are not sent to a user's origin
    assert f'href="{hub.url}/hub/logout"' in page.text
    domains = {c.name: c.domain for c in s.cookies if c.name.startswith("jupyterhub-")}
    assert domains["jupyterhub-hub-login"] == "portal.localhost"
    assert domains[f"jupyterhub-user-{UMA}"] == f"{UMA}.portal.localhost"

    # Ulf's cookies do nothing on Uma's origin, and his PUN is not on it
    r = ulf.get(f"{home}dashboard", timeout=30)
    assert r.status_code == 403, (r.status_code, r.url)
    r = ulf.get(f"{hub.user_url(UMA)}/user/{ULF}/dashboard", timeout=30)
    assert not (r.status_code == 200 and r.url.endswith(f"/user/{ULF}/dashboard")), r.url


def test_files_upload_and_download_on_the_users_origin(sub_hub, uma):
    hub, (s, _) = sub_hub, uma
    target = Path(f"/home/{UMA}/subdomain-upload.bin")
    target.unlink(missing_ok=True)
    url = f"{hub.user_url(UMA)}/user/{UMA}/files/fs{quote(str(target))}"
    body = os.urandom(2**20)
    r = s.put(url, data=body, headers={"X-XSRFToken": xsrf(s, UMA)}, timeout=60)
    assert r.status_code == 201, r.text
    assert target.read_bytes() == body
    assert target.stat().st_uid == int(run("id", "-u", UMA).stdout)
    r = s.get(url, timeout=60)
    assert r.status_code == 200 and r.content == body
    assert r.headers["Server"] == "nginx" and "attachment" in r.headers["Content-Disposition"]
    target.unlink()


async def test_shell_websocket_on_the_users_origin_and_not_from_another(sub_hub, uma, ulf):
    hub, (s, _) = sub_hub, uma
    base = f"{hub.user_url(UMA)}/user/{UMA}"
    assert s.get(f"{base}/shell/", timeout=30).status_code == 200
    r = s.post(
        f"{base}/api/ondemand/shell/terminals",
        json={},
        headers={"X-XSRFToken": xsrf(s, UMA)},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    try:
        ws = await websocket(hub, s, UMA, f"/user/{UMA}/terminals/websocket/{name}")
        await ws.write_message(json.dumps(["stdin", "echo sub-$((6*7)) $(id -un)\r"]))
        assert f"sub-42 {UMA}" in await terminal_output_until(ws, rf"sub-42 {UMA}")
        ws.close()
        # a page on Ulf's origin cannot open Uma's shell, even with Uma's cookies
        with pytest.raises(HTTPClientError) as refused:
            await websocket(
                hub,
                s,
                UMA,
                f"/user/{UMA}/terminals/websocket/{name}",
                origin=hub.user_url(ULF),
            )
        assert refused.value.code == 403
    finally:
        s.delete(f"{base}/api/terminals/{name}", headers={"X-XSRFToken": xsrf(s, UMA)}, timeout=30)


def launch(hub, token, name: str, options: dict) -> None:
    r = requests.post(
        f"{hub.url}/hub/api/users/{UMA}/servers/{name}",
        json={"user_options": {"cluster": "local", **options}},
        headers=token,
        timeout=30,
    )
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: server_model(hub, token, UMA, name).get("ready"), 90, f"{name} ready", hub)


def stop(hub, token, name: str) -> None:
    r = requests.delete(
        f"{hub.url}/hub/api/users/{UMA}/servers/{name}",
        json={"remove": True},
        headers=token,
        timeout=60,
    )
    assert r.status_code in (202, 204), r.text


def visit(session: requests.Session, url: str) -> requests.Response:
    """GET like a browser, confirming JupyterHub's "authorize access" page for a server that
    is not the visitor's own (a shared session)."""
    r = session.get(url, timeout=30)
    if r.status_code == 200 and "/hub/api/oauth2/authorize" in r.url and "<form" in r.text:
        form = {"_xsrf": session.cookies.get("_xsrf", path="/hub/")}
        r = session.post(r.url, data=form, timeout=30)
    return r


async def test_jupyterlab_session_and_sharing_on_the_owners_origin(sub_hub, uma, ulf):
    hub, (s, token) = sub_hub, uma
    launch(hub, token, "lab", {"app": "jupyter", "bc_num_hours": 1})
    model = server_model(hub, token, UMA, "lab")
    base = f"{hub.user_url(UMA)}/user/{UMA}/lab"
    assert model["url"] == f"{base}/"  # the hub gives the session's full URL on Uma's origin
    r = s.get(f"{base}/lab", timeout=60)
    assert r.status_code == 200 and r.url == f"{base}/lab", (r.status_code, r.url)
    headers = {"X-XSRFToken": xsrf(s, UMA, "lab")}
    r = s.post(f"{base}/api/kernels", json={}, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    ws = await websocket(hub, s, UMA, f"/user/{UMA}/lab/api/kernels/{kernel}/channels")
    ws.close()
    assert ulf.get(f"{base}/api/status", timeout=30).status_code == 403

    # Uma shares it with Ulf; Ulf opens it on Uma's origin; she takes it back
    pun_api = f"{hub.user_url(UMA)}/user/{UMA}/api/ondemand/sessions/lab/shares"
    headers = {"X-XSRFToken": xsrf(s, UMA)}
    r = s.post(pun_api, json={"user": ULF}, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    assert s.get(pun_api, headers=headers, timeout=30).json()["url"] == f"{base}/"
    r = visit(ulf, f"{base}/lab")
    assert r.status_code == 200 and r.url == f"{base}/lab", (r.status_code, r.url)
    assert ulf.get(f"{base}/api/status", timeout=30).status_code == 200
    r = ulf.get(f"{hub.user_url(ULF)}/user/{ULF}/api/ondemand/shared", timeout=30)
    assert r.json()["shared"] == [{"owner": UMA, "name": "lab", "url": f"{base}/", "ready": True}]
    # the share is for the session only, never Uma's PUN
    r = visit(ulf, f"{hub.user_url(UMA)}/user/{UMA}/dashboard")
    assert r.status_code == 403, (r.status_code, r.url)
    assert s.delete(f"{pun_api}/{ULF}", headers=headers, timeout=30).status_code in (200, 204)
    stop(hub, token, "lab")


async def test_desktop_novnc_websocket_on_the_owners_origin(sub_hub, uma, ulf):
    hub, (s, token) = sub_hub, uma
    launch(hub, token, "desk", {"app": "desktop", "resolution": "1280x800", "bc_num_hours": 1})
    base = f"{hub.user_url(UMA)}/user/{UMA}/desk"
    page = s.get(f"{base}/desktop/", timeout=30)
    assert page.status_code == 200 and page.url == f"{base}/desktop/", (page.status_code, page.url)
    ws = await websocket(
        hub, s, UMA, f"/user/{UMA}/desk/desktop-websockify/", subprotocols=["binary"]
    )
    try:
        assert await ws.read_message() == b"RFB 003.008\n"
    finally:
        ws.close()
    with pytest.raises(HTTPClientError) as refused:
        await websocket(hub, ulf, UMA, f"/user/{UMA}/desk/desktop-websockify/")
    assert refused.value.code == 403
    stop(hub, token, "desk")


def test_vscode_on_the_owners_origin(sub_hub, uma, ulf):
    hub, (s, token) = sub_hub, uma
    launch(hub, token, "code", {"app": "vscode", "bc_num_hours": 1})
    base = f"{hub.user_url(UMA)}/user/{UMA}/code"
    r = s.get(f"{base}/", timeout=60)
    assert r.status_code == 200 and r.url.startswith(f"{base}/vscode/"), (r.status_code, r.url)
    assert r.json()["fake"] == "code-server"
    assert ulf.get(f"{base}/vscode/", timeout=30).status_code == 403
    stop(hub, token, "code")


def test_logout_on_the_hub_host_ends_the_session(sub_hub):
    hub = sub_hub
    s, _ = hub.login(UMA, PASSWORDS[UMA])
    hub.open_dashboard(s, UMA)
    r = s.get(f"{hub.url}/hub/logout", timeout=30)
    assert r.status_code == 200, r.status_code
    assert "jupyterhub-hub-login" not in {c.name for c in s.cookies}
    # the PUN's own cookie is gone with the hub's OAuth tokens: the next visit is sent to log in
    r = s.get(f"{hub.user_url(UMA)}/user/{UMA}/dashboard", timeout=30)
    assert r.url.startswith(f"{hub.url}/hub/login"), r.url
