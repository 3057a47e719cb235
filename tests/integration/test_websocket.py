"""Websockets reach the user's jupyter-server through the proxy and the PUN's nginx, with the
Origin checked and only for the owner."""

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect


def cookie_header(session, hub) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


async def connect(hub, owner, session, origin):
    url = hub.url.replace("http://", "ws://") + f"/user/{owner}/api/events/subscribe"
    headers = {"Cookie": cookie_header(session, hub), "Origin": origin}
    request = HTTPRequest(url, headers=headers, connect_timeout=10)
    return await websocket_connect(request)


async def test_websocket_through_the_pun_for_the_owner_with_same_origin(hub, accounts):
    s, _ = hub.login("odt-alice")
    hub.open_dashboard(s, "odt-alice")
    ws = await connect(hub, "odt-alice", s, origin=hub.url)
    ws.close()


async def test_websocket_from_another_origin_is_refused(hub, accounts):
    s, _ = hub.login("odt-alice")
    hub.open_dashboard(s, "odt-alice")
    with pytest.raises(HTTPClientError) as e:
        await connect(hub, "odt-alice", s, origin="http://evil.example")
    assert e.value.code == 403


async def test_websocket_with_another_users_cookies_is_refused(hub, accounts):
    alice, _ = hub.login("odt-alice")
    hub.open_dashboard(alice, "odt-alice")
    bob, _ = hub.login("odt-bob")
    hub.open_dashboard(bob, "odt-bob")
    with pytest.raises(HTTPClientError) as e:
        await connect(hub, "odt-alice", bob, origin=hub.url)
    assert e.value.code == 403
