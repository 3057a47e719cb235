"""Sessions across hosts: the hub and the proxy on the portal host, the session's server on a
compute node of the cluster scripts/slurm.sh built (its own network namespace, address and
hostname; docs/deployment.md). Nina launches JupyterLab and a Desktop through the portal on the
``compute`` partition: every process of the session is in the node's network namespace, the
proxy routes to the node's address, Nina reaches the app (JupyterLab page, a kernel websocket
that runs code on the node; noVNC's VNC handshake) and Noah is refused. What the cluster has is
read from what the script built (/run/slurm/cluster.json) and from Slurm, never from this
machine."""

import json
import os
import re
import shutil
import socket
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from harness import (
    api_token,
    ensure_account,
    run,
    server_model,
    slurm_cluster,
    slurm_hub,
    wait_for,
)

NINA, NOAH = "odt-nina", "odt-noah"
PASSWORDS = {NINA: "Nina-pw-9!", NOAH: "Noah-pw-9!"}


@pytest.fixture(scope="module")
def cluster() -> dict:
    built = slurm_cluster()
    nodes = run("sinfo", "-h", "-N", "-p", built["partition"], "-o", "%N").stdout.split()
    assert sorted(nodes) == sorted(n["name"] for n in built["nodes"]) and len(nodes) >= 2
    return built


@pytest.fixture(scope="module")
def cross_hub(cluster):
    for name, password in PASSWORDS.items():
        ensure_account(name, password)
    for name in ("xlab", "xdesk"):
        shutil.rmtree(f"/home/{NINA}/ondemand/sessions/{name}", ignore_errors=True)
    try:
        with slurm_hub("cross-host") as hub:
            yield hub
    finally:
        run("scancel", "-u", NINA, check=False)


@pytest.fixture(scope="module")
def nina(cross_hub):
    s, reply = cross_hub.login(NINA, PASSWORDS[NINA])
    assert reply.status_code == 302, cross_hub.log_tail()
    return s, api_token(cross_hub, s, NINA, "test_cross_host")


@pytest.fixture(scope="module")
def noah(cross_hub):
    s, reply = cross_hub.login(NOAH, PASSWORDS[NOAH])
    assert reply.status_code == 302, cross_hub.log_tail()
    return s


def job_of(name: str) -> tuple[str, str, str]:
    """Nina's job of session ``name``: (id, state, node)."""
    out = run("squeue", "-h", "-u", NINA, "-n", name, "-t", "PD,CF,R", "-o", "%i|%T|%N").stdout
    lines = out.split()
    return tuple(lines[0].split("|")) if lines else ()


def netns(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def job_processes(job_id: str) -> list[int]:
    """Live processes whose environment says they belong to Slurm job ``job_id``."""
    marker = f"SLURM_JOB_ID={job_id}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if marker in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                if ") Z " not in Path(f"/proc/{entry}/stat").read_text():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def proxy_routes(hub) -> dict:
    """CHP's routing table, asked with the token the hub gave the proxy."""
    pid = int((hub.state_dir / "jupyterhub-proxy.pid").read_text())
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    token = next(v.split(b"=", 1)[1] for v in environ if v.startswith(b"CONFIGPROXY_AUTH_TOKEN="))
    r = requests.get(
        f"http://127.0.0.1:{hub.env['ONDEMAND_HUB_PROXY_API_PORT']}/api/routes",
        headers={"Authorization": f"token {token.decode()}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()


def launch_on_a_compute_node(hub, token, cluster, name: str, options: dict) -> tuple[str, dict]:
    """Launch session ``name`` on the compute partition; (job id, node) once it is ready."""
    options = {**options, "bc_queue": cluster["partition"]}
    r = requests.post(
        f"{hub.url}/hub/api/users/{NINA}/servers/{name}",
        json={"user_options": options},
        headers=token,
        timeout=30,
    )
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: server_model(hub, token, NINA, name).get("ready"), 120, "ready", hub)
    job_id, state, node_name = job_of(f"ondemand-{options['app']}-{name}")
    assert state == "RUNNING"
    node = next(n for n in cluster["nodes"] if n["name"] == node_name)
    return job_id, node


def assert_routed_to(hub, node: dict, name: str) -> None:
    """The proxy sends /user/nina/<name>/ to the node's address (its name, which the portal
    host resolves to the node's address on the bridge)."""
    target = urlparse(proxy_routes(hub)[f"/user/{NINA}/{name}"]["target"])
    assert target.hostname == node["name"]
    assert socket.gethostbyname(target.hostname) == node["address"]


def assert_in_node(pids: list[int], node: dict) -> None:
    here = netns("/proc/self/ns/net")
    assert pids
    for pid in pids:
        assert netns(f"/proc/{pid}/ns/net") == netns(node["netns"]) != here, pid


async def run_code(base: str, token: dict, kernel: str, code: str) -> str:
    """Run ``code`` in the kernel through its websocket (Jupyter's JSON protocol); its stdout."""
    url = base.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels"
    ws = await websocket_connect(HTTPRequest(url, headers=token, connect_timeout=20))
    try:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "username": NINA, "session": uuid.uuid4().hex,
                  "msg_type": "execute_request", "version": "5.3"}  # fmt: skip
        content = {"code": code, "silent": False, "store_history": False,
                   "user_expressions": {}, "allow_stdin": False}  # fmt: skip
        await ws.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                                           "content": content, "channel": "shell"}))  # fmt: skip
        out = ""
        for _ in range(50):
            msg = json.loads(await ws.read_message())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out += msg["content"]["text"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out
        raise AssertionError(f"no reply from kernel {kernel}: {out!r}")
    finally:
        ws.close()


def delete(hub, token, name: str, job_id: str) -> None:
    r = requests.delete(f"{hub.url}/hub/api/users/{NINA}/servers/{name}", headers=token, timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: not job_processes(job_id), 30, f"job {job_id}'s processes gone", hub)


async def test_jupyterlab_on_a_compute_node_through_the_proxy(cross_hub, cluster, nina, noah):
    hub, (s, token) = cross_hub, nina
    job_id, node = launch_on_a_compute_node(hub, token, cluster, "xlab", {"app": "jupyter"})
    assert_routed_to(hub, node, "xlab")

    base = f"{hub.url}/user/{NINA}/xlab"
    r = s.get(f"{base}/lab", timeout=60)
    assert r.status_code == 200 and r.url == f"{base}/lab", (r.status_code, r.url)
    r = requests.post(f"{base}/api/kernels", json={"name": "python3"}, headers=token, timeout=60)
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    # the kernel runs on the node: its hostname, and a process in the node's namespace
    out = await run_code(base, token, kernel, "import socket; print(socket.gethostname())")
    assert out.strip() == node["name"]
    processes = job_processes(job_id)
    assert any(kernel in Path(f"/proc/{p}/cmdline").read_text(errors="replace") for p in processes)
    assert_in_node(processes, node)

    assert noah.get(f"{base}/api/status", timeout=30).status_code == 403
    assert noah.get(f"{base}/lab", timeout=30).status_code == 403
    # Past the proxy, straight to the node's port (anyone on the nodes' network can): the
    # session's server itself refuses Noah's API token, and a request with no credentials.
    target = proxy_routes(hub)[f"/user/{NINA}/xlab"]["target"]
    direct = f"{target}/user/{NINA}/xlab/api/status"
    noah_token = api_token(hub, noah, NOAH, "test_cross_host")
    assert requests.get(direct, headers=noah_token, timeout=30).status_code == 403
    assert requests.get(direct, timeout=30, allow_redirects=False).status_code == 403
    assert requests.get(direct, headers=token, timeout=30).status_code == 200
    delete(hub, token, "xlab", job_id)


async def test_desktop_on_a_compute_node_vnc_handshake_through_novnc(
    cross_hub, cluster, nina, noah
):
    if not shutil.which("vncserver"):
        pytest.fail("TigerVNC is not installed (scripts/setup.sh installs it)")
    hub, (s, token) = cross_hub, nina
    options = {"app": "desktop", "resolution": "1280x800"}
    job_id, node = launch_on_a_compute_node(hub, token, cluster, "xdesk", options)
    assert_routed_to(hub, node, "xdesk")
    processes = job_processes(job_id)
    comms = {re.sub(r"\s", "", Path(f"/proc/{p}/comm").read_text()) for p in processes}
    assert "Xtigervnc" in comms, comms
    assert_in_node(processes, node)

    base = f"{hub.url}/user/{NINA}/xdesk"
    page = s.get(f"{base}/desktop/", timeout=30)
    assert page.status_code == 200 and page.url == f"{base}/desktop/", (page.status_code, page.url)
    greeting = await vnc_greeting(hub, s, base)
    assert greeting == b"RFB 003.008\n", greeting

    assert noah.get(f"{base}/desktop/", timeout=30).status_code == 403
    with pytest.raises(HTTPClientError) as refused:
        await vnc_greeting(hub, noah, base)
    assert refused.value.code == 403
    delete(hub, token, "xdesk", job_id)


async def vnc_greeting(hub, session: requests.Session, base: str) -> bytes:
    """The first bytes of noVNC's websocket: the VNC server's RFB handshake."""
    url = base.replace("http://", "ws://") + "/desktop-websockify/"
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    request = HTTPRequest(url, headers={"Cookie": cookies, "Origin": hub.url}, connect_timeout=10)
    ws = await websocket_connect(request, subprotocols=["binary"])
    try:
        return await ws.read_message()
    finally:
        ws.close()


def test_the_login_host_runs_a_users_command_over_ssh_in_its_own_namespace(cluster, tmp_path):
    """The login host (Debian's sshd in a namespace of its own, for the LinuxHost backend to
    come): Nina's key gets her a shell there, in its network namespace, with its hostname; a
    key that is not hers is refused."""
    ensure_account(NINA, PASSWORDS[NINA])
    login = cluster["login"]
    ssh_dir = Path(f"/home/{NINA}/.ssh")
    keys = ssh_dir / "authorized_keys"
    kept = keys.read_bytes() if keys.exists() else None
    for name in ("nina", "other"):
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name))
    host_key = Path("/etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    (tmp_path / "known_hosts").write_text(f"{login['name']} {' '.join(host_key)}\n")

    known = f"UserKnownHostsFile={tmp_path / 'known_hosts'}"

    def ssh(key: str, command: str):
        return run(
            "ssh", "-i", str(tmp_path / key), "-l", NINA, "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", known,
            "-o", "ConnectTimeout=10", login["name"], command, check=False, timeout=30,
        )  # fmt: skip

    try:
        run("install", "-d", "-o", NINA, "-g", NINA, "-m", "0700", str(ssh_dir))
        run("install", "-o", NINA, "-g", NINA, "-m", "0600", str(tmp_path / "nina.pub"), str(keys))
        done = ssh("nina", "hostname; id -un; stat -L -c %i /proc/self/ns/net")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [login["name"], NINA, str(netns(login["netns"])[1])]
        assert ssh("other", "true").returncode == 255
    finally:
        if kept is None:
            keys.unlink(missing_ok=True)
        else:
            keys.write_bytes(kept)
