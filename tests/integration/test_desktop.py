"""The Desktop app end to end on the real single-node Slurm: Dora launches it through the REST
API, receives the VNC server's handshake through the noVNC websocket of her session (hub OAuth
cookie, through the proxy), the VNC server listens on a Unix socket in a private directory and
on no TCP port, the job writes a screenshot thumbnail for her card, Dan's cookies are refused,
and deleting the session cancels the job and removes the private directory."""

import os
import re
import shutil
import stat
from pathlib import Path

import pytest
import requests
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from harness import api_token, ensure_account, run, server_model, slurm_hub, wait_for

DORA, DAN = "odt-dora", "odt-dan"
PASSWORDS = {DORA: "Dora-pw-7!", DAN: "Dan-pw-8!"}


@pytest.fixture(scope="module")
def desktop_hub(accounts):
    if not shutil.which("vncserver"):
        pytest.fail("TigerVNC is not installed (scripts/setup.sh installs it)")
    for name, password in PASSWORDS.items():
        ensure_account(name, password)
    # an earlier run's session folder would hold an old thumbnail.png
    shutil.rmtree(f"/home/{DORA}/ondemand/sessions/desk1", ignore_errors=True)
    try:
        with slurm_hub("desktop") as hub:
            yield hub
    finally:
        run("scancel", "-u", DORA, check=False)


def server(hub, token, name):
    return server_model(hub, token, DORA, name)


def jobs(name):
    out = run("squeue", "-h", "-t", "PD,CF,R,CG", "-u", DORA, "-n", name, "-o", "%i|%T").stdout
    return dict(line.split("|") for line in out.split())


def processes_of(uid: int, comm: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        name = re.search(r"^Name:\s*(\S+)", status, re.M).group(1)
        real_uid = int(re.search(r"^Uid:\s*(\d+)", status, re.M).group(1))
        if name == comm and real_uid == uid and "State:\tZ" not in status:
            pids.append(int(entry))
    return pids


def boot_ticks_now() -> int:
    """Now, in the unit of /proc/<pid>/stat's start time (clock ticks since boot)."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return int(uptime * os.sysconf("SC_CLK_TCK"))


def left_behind(uid: int, since: int) -> list[str]:
    """Commands of ``uid``'s live processes started since ``since``, but the PUN's."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            owner = os.stat(f"/proc/{entry}").st_uid
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if owner != uid or stat[0] == "Z" or int(stat[19]) < since:
            continue
        if "ondemand-pun-server" in cmd or cmd.startswith("nginx"):
            continue
        found.append(cmd.strip())
    return found


def tcp_listeners_of(pid: int) -> list[str]:
    """Listening TCP sockets (v4 and v6) owned by ``pid``, as 'addr:port' hex strings."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                found.append(fields[1])
    return found


async def websockify(hub, session, owner, name):
    url = hub.url.replace("http://", "ws://") + f"/user/{owner}/{name}/desktop-websockify/"
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    request = HTTPRequest(url, headers={"Cookie": cookies, "Origin": hub.url}, connect_timeout=10)
    return await websocket_connect(request, subprotocols=["binary"])


async def test_desktop_vnc_handshake_through_novnc_websocket_only_for_the_owner(desktop_hub):
    hub = desktop_hub
    s, reply = hub.login(DORA, PASSWORDS[DORA])
    assert reply.status_code == 302, hub.log_tail()
    token = api_token(hub, s, DORA, "test_desktop")
    since = boot_ticks_now()
    r = requests.post(
        f"{hub.url}/hub/api/users/{DORA}/servers/desk1",
        json={"user_options": {"app": "desktop", "resolution": "1280x800"}},
        headers=token,
        timeout=30,
    )
    assert r.status_code in (201, 202), r.text
    (job_id,) = wait_for(lambda: jobs("ondemand-desktop-desk1"), 15, "job queued", hub)
    wait_for(lambda: server(hub, token, "desk1").get("ready"), 90, "desktop ready", hub)
    session_dir = Path(f"/home/{DORA}/ondemand/sessions/desk1")
    log = (session_dir / "output.log").read_text()
    assert "ondemand-hub: desktop up" in log, log

    # The VNC server: Dora's, on a 0600 Unix socket in a 0700 directory, and no TCP port.
    uid = int(run("id", "-u", DORA).stdout)
    (xvnc,) = processes_of(uid, "Xtigervnc")
    assert tcp_listeners_of(xvnc) == []
    cmdline = Path(f"/proc/{xvnc}/cmdline").read_bytes().split(b"\0")
    sock = cmdline[cmdline.index(b"-rfbunixpath") + 1].decode()
    assert stat.S_ISSOCK(os.stat(sock).st_mode) and os.stat(sock).st_mode & 0o777 == 0o600
    private = os.path.dirname(sock)
    assert os.stat(private).st_uid == uid and os.stat(private).st_mode & 0o777 == 0o700

    # noVNC's page through the proxy (the OAuth dance sets the session's cookie) ...
    base = f"{hub.url}/user/{DORA}/desk1"
    page = s.get(f"{base}/desktop/", timeout=30)
    assert page.status_code == 200 and page.url == f"{base}/desktop/", (page.status_code, page.url)
    # ... and its websocket: the first bytes are the VNC server's RFB handshake.
    ws = await websockify(hub, s, DORA, "desk1")
    try:
        greeting = await ws.read_message()
    finally:
        ws.close()
    assert greeting == b"RFB 003.008\n", greeting

    # The job keeps a thumbnail of the screen for the session's card.
    thumb = session_dir / "thumbnail.png"
    wait_for(thumb.exists, 30, "thumbnail.png", hub)
    assert thumb.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and thumb.stat().st_uid == uid

    # Dan: no page, no websocket.
    dan, _ = hub.login(DAN, PASSWORDS[DAN])
    assert dan.get(f"{base}/desktop/", timeout=30).status_code == 403
    with pytest.raises(HTTPClientError) as refused:
        await websockify(hub, dan, DORA, "desk1")
    assert refused.value.code == 403

    r = requests.delete(f"{hub.url}/hub/api/users/{DORA}/servers/desk1", headers=token, timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: job_id not in jobs("ondemand-desktop-desk1"), 20, "job cancelled", hub)
    wait_for(lambda: not processes_of(uid, "Xtigervnc"), 20, "Xtigervnc gone", hub)
    wait_for(lambda: not os.path.exists(private), 20, "private directory removed", hub)
    # nothing the desktop started outlives it (Xfce's agents and D-Bus daemonize: a job's
    # process tracking would miss them)
    wait_for(lambda: not left_behind(uid, since), 20, "no process of the desktop left", hub)
