"""Attacks on another user's PUN by a hostile local user (odt-mallory, with a shell on the portal
host) and by unauthenticated clients, performed for real against the victim's (odt-victim) PUN:
real accounts, real hub, proxy, nginx and ondemand-stage."""

from __future__ import annotations

import grp
import json
import os
import pwd
import select
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import pytest
import requests

from harness import (
    STAGE,
    VENV_BIN,
    api_token,
    ensure_account,
    failed_progress_message,
    run,
    running_hub,
    stage,
)
from ondemand_hub.launcher import listeners, process_tree, read_tcp_tables, socket_inodes
from ondemand_hub.stage.config import load_config

MALLORY, VICTIM = "odt-mallory", "odt-victim"
PASSWORDS = {MALLORY: "Mallory-pw-7!", VICTIM: "Victim-pw-8!"}
PYTHON = str(VENV_BIN / "python")
#: How much of a hostile body a test sends at most, whatever the server does (bounded loop).
SEND_AT_MOST = 96 * 2**20
#: Free space may move this much while a test runs (logs, other processes), not more.
DISK_SLACK = 16 * 2**20


@pytest.fixture(scope="module")
def pair():
    for name, password in PASSWORDS.items():
        ensure_account(name, password)
    yield {name: pwd.getpwnam(name) for name in PASSWORDS}
    for name in PASSWORDS:
        run(STAGE, "pun", "stop", "--user", name, check=False)


@pytest.fixture(scope="module")
def victim(hub, pair):
    s, reply = hub.login(VICTIM, PASSWORDS[VICTIM])
    assert reply.status_code == 302, reply.text[-300:]
    hub.open_dashboard(s, VICTIM)
    return s


@pytest.fixture(scope="module")
def mallory(hub, pair):
    s, reply = hub.login(MALLORY, PASSWORDS[MALLORY])
    assert reply.status_code == 302, reply.text[-300:]
    hub.open_dashboard(s, MALLORY)
    return s


def as_user(name: str, code: str, *args: str, **kw) -> subprocess.CompletedProcess:
    """Run Python ``code`` as the account ``name`` (its uid, gid and groups), like its shell."""
    entry = pwd.getpwnam(name)
    return subprocess.run(
        [PYTHON, "-c", code, *args],
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=os.getgrouplist(name, entry.pw_gid),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=30,
        **kw,
    )


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def xsrf(session: requests.Session, user: str) -> str:
    return next(c.value for c in session.cookies if c.name == "_xsrf" and user in c.path)


class Put(NamedTuple):
    status: int | None  # what the server answered; None: no answer while we sent
    sent: int  # body bytes sent before the answer (or SEND_AT_MOST)
    disk_used: int  # bytes the file system of ``watch`` lost meanwhile (connection still open)
    body_files: list[str]  # files that appeared in ``watch``/client_body (connection open)


def hostile_put(
    hub, path: str, headers: dict[str, str], length: int, chunked: bool = False, watch: str = "/"
) -> Put:
    """PUT a body of ``length`` bytes through the proxy, streamed from memory and bounded:
    stop sending as soon as the server answers (or at SEND_AT_MOST); what nginx wrote to disk
    is measured before the connection closes (nginx removes a body file when it does).
    ``chunked``: no Content-Length, the body in chunks (a size nobody announced)."""
    port = int(hub.url.rsplit(":", 1)[1])
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{framing}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    piece = b"\0" * 2**18
    if chunked:
        piece = b"%x\r\n" % len(piece) + piece + b"\r\n"
    sent, body_dir = 0, os.path.join(watch, "client_body")
    files_before, free_before = listing(body_dir), free_bytes(watch)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        while sent < min(length, SEND_AT_MOST):
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable or not writable:
                break
            try:
                sent += sock.send(piece)
            except OSError:  # the server closed: it has answered (or gave up on us)
                break
        disk_used = free_before - free_bytes(watch)
        body_files = sorted(set(listing(body_dir)) - set(files_before))
        try:
            answer = sock.recv(4096).decode("latin-1")
        except OSError:
            answer = ""
    status = int(answer.split()[1]) if answer.startswith("HTTP/1.1 ") else None
    return Put(status, sent, disk_used, body_files)


def listing(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# -- finding 3: the PUN listens on no TCP port; its socket is the user's and the proxy's --------


def test_the_pun_has_no_tcp_port_and_only_its_owner_and_the_proxy_reach_its_socket(
    hub, pair, victim
):
    info = stage("status", "--user", VICTIM)
    # nginx's master and workers and the jupyter-server: none holds a listening TCP socket
    pids = [p for key in ("nginx", "server") for p in process_tree(info["pids"][key])]
    assert len(pids) >= 3 and not socket_inodes(pids) & listeners(read_tcp_tables()), pids
    sock = Path(info["socket"])
    directory = sock.parent.stat()
    proxy_gid = grp.getgrnam(load_config().proxy_group).gr_gid  # root unless stage.yml says
    assert (directory.st_uid, directory.st_gid) == (pair[VICTIM].pw_uid, proxy_gid)
    assert directory.st_mode & 0o777 == 0o710
    assert (sock.parent / "jupyter.sock").stat().st_mode & 0o777 == 0o600
    # mallory, with a shell on the same host, cannot even connect to the victim's nginx
    probe = "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])"
    done = as_user(MALLORY, probe, str(sock))
    assert done.returncode == 1 and "PermissionError" in done.stderr, done.stderr
    # the owner still gets the dashboard through the proxy
    assert hub.open_dashboard(victim, VICTIM).status_code == 200


# -- every PUN answer carries the security headers ------------------------------------------------


def test_every_pun_page_forbids_inline_script_and_foreign_framing(hub, pair, victim):
    static = "static/vendor/bootstrap/dist/css/bootstrap.min.css"
    for path in ("dashboard", "files/fs/tmp", static, "no-such-page"):
        r = victim.get(f"{hub.url}/user/{VICTIM}/{path}", timeout=30)
        assert r.status_code in (200, 404), (path, r.status_code)
        policy = r.headers["Content-Security-Policy"]  # (jupyter-server's own joined with ours)
        assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy, path
        assert "frame-ancestors 'self'" in policy, path
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        assert r.headers["Referrer-Policy"] == "same-origin", path


# -- finding 2: no body is read before the request is the owner's --------------------------------


@pytest.mark.parametrize(
    "who", ["anonymous", "anonymous, chunked", "mallory's cookies", "mallory's token"]
)
def test_uploads_of_anyone_but_the_owner_are_refused_before_the_body_is_read(
    hub, pair, victim, mallory, who
):
    headers = {}
    if who == "mallory's cookies":
        headers = {"Cookie": cookie_header(mallory), "X-XSRFToken": xsrf(mallory, MALLORY)}
    elif who == "mallory's token":
        headers = api_token(hub, mallory, MALLORY)
    tmp = f"/var/tmp/ondemand-hub/{VICTIM}"
    target = f"{pair[VICTIM].pw_dir}/from-{who.split()[0].strip(',')}.bin"
    for path in (
        f"/user/{VICTIM}/files/fs{quote(target)}",
        f"/user/{VICTIM}/files/api/uploads/0123456789abcdef0123456789abcdef",
    ):
        started = time.monotonic()
        put = hostile_put(hub, path, headers, 10**9, chunked="chunked" in who, watch=tmp)
        elapsed = time.monotonic() - started
        assert put.status in (401, 403), (path, put)
        assert elapsed < 5 and put.sent < SEND_AT_MOST, (path, elapsed, put)
        assert put.body_files == [] and put.disk_used < DISK_SLACK, (path, put)
    assert not os.path.exists(target)


def test_the_owner_uploads_within_the_limit_and_gets_413_beyond_it(hub, pair, victim):
    target = f"{pair[VICTIM].pw_dir}/owner-upload.bin"
    url = f"{hub.url}/user/{VICTIM}/files/fs{quote(target)}"
    body = os.urandom(2**20)
    r = victim.put(url, data=body, headers={"X-XSRFToken": xsrf(victim, VICTIM)}, timeout=30)
    assert r.status_code == 201, r.text
    assert Path(target).read_bytes() == body
    os.unlink(target)
    headers = {"Cookie": cookie_header(victim), "X-XSRFToken": xsrf(victim, VICTIM)}
    put = hostile_put(hub, f"/user/{VICTIM}/files/fs{quote(target)}", headers, 11 * 2**30)
    assert (put.status, put.sent < SEND_AT_MOST) == (413, True)
    # any other request's body is held by jupyter-server in memory: a small limit
    put = hostile_put(hub, f"/user/{VICTIM}/api/contents/x", headers, 17 * 2**20)
    assert (put.status, put.sent < 17 * 2**20) == (413, True)


# -- finding 5: root-owned trees made at install, checked at every start ------------------------


def private_stage(tmp_root: str, state: Path) -> list[str]:
    """argv of the real ondemand-stage reading a stage.yml of this test only: in a mount
    namespace of its own, a copy of /etc/ondemand-hub (with ``tmp_root`` set) is bound over
    the real one, so the test never changes the configuration other tests run with."""
    conf = state / "etc-ondemand-hub"
    if not conf.exists():
        subprocess.run(["cp", "-a", "/etc/ondemand-hub", str(conf)], check=True)
        (conf / "stage.yml").write_text(f"tmp_root: {tmp_root}\n")
        for path in (state, conf, conf / "stage.yml"):
            os.chown(path, 0, 0)
        os.chmod(state, 0o755)
    script = 'mount --bind "$0" /etc/ondemand-hub && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]


def remove_tree(path: str) -> None:
    if os.path.islink(path):
        os.unlink(path)
    elif os.path.exists(path):
        run("rm", "-rf", "--one-file-system", path)


@pytest.fixture
def fresh_tmp_root(pair, tmp_path_factory):
    """A tmp_root nobody made yet (under /var/tmp, where every local user may create names),
    mallory's own directory that her links point into, and the victim's PUN stopped."""
    state = Path(f"/var/tmp/odt-hostile-{os.getpid()}-state")
    remove_tree(str(state))
    state.mkdir(mode=0o755)
    root = f"/var/tmp/odt-hostile-{os.getpid()}-tmp"
    loot = Path(pair[MALLORY].pw_dir) / "loot"
    remove_tree(str(loot))
    as_user(MALLORY, "import os,sys; os.mkdir(sys.argv[1], 0o755)", str(loot))
    run(STAGE, "pun", "stop", "--user", VICTIM)
    yield root, loot, state
    run(STAGE, "pun", "stop", "--user", VICTIM)
    for path in (root, str(loot), str(state)):
        remove_tree(path)


def start_privately(root: str, state: Path) -> subprocess.CompletedProcess:
    argv = [*private_stage(root, state), str(state / "etc-ondemand-hub"), STAGE]
    return run(*argv, "pun", "start", "--user", VICTIM, check=False, input='{"env": {}}')


def untouched(loot: Path, uid: int) -> bool:
    st = loot.stat()
    return os.listdir(loot) == [] and (st.st_uid, st.st_mode & 0o777) == (uid, 0o755)


def test_links_planted_at_the_tmp_root_before_the_first_login_are_refused(pair, fresh_tmp_root):
    root, loot, state = fresh_tmp_root
    mallory_uid = pair[MALLORY].pw_uid
    # 1. the tmp root itself is mallory's link into her own directory
    done = as_user(MALLORY, "import os,sys; os.symlink(sys.argv[2], sys.argv[1])", root, str(loot))
    assert done.returncode == 0, done.stderr
    done = start_privately(root, state)
    assert done.returncode == 1
    assert f"refusing to use {root}: it is a symlink" in done.stderr, done.stderr
    assert untouched(loot, mallory_uid)
    # 2. the tmp root is mallory's directory, with a link where the victim's directory goes
    os.unlink(root)
    plant = "import os,sys; os.mkdir(sys.argv[1], 0o755); os.symlink(sys.argv[2], sys.argv[3])"
    done = as_user(MALLORY, plant, root, str(loot), f"{root}/{VICTIM}")
    assert done.returncode == 0, done.stderr
    done = start_privately(root, state)
    assert done.returncode == 1
    assert f"refusing to use {root}: it belongs to uid {mallory_uid}, not root" in done.stderr
    assert untouched(loot, mallory_uid)
    assert stage("status", "--user", VICTIM)["running"] is False


def test_a_root_tree_holding_another_accounts_entry_is_refused(pair, fresh_tmp_root):
    """A NAMED FAKE of the state before this check: root plants the entries here, because no
    other account can write into a root-owned tmp root (which is the point of it)."""
    root, loot, state = fresh_tmp_root
    os.mkdir(root, 0o755)
    os.symlink(loot, f"{root}/{VICTIM}")
    done = start_privately(root, state)
    assert done.returncode == 1 and f"{root}/{VICTIM} is not a usable directory" in done.stderr
    os.unlink(f"{root}/{VICTIM}")
    os.mkdir(f"{root}/{VICTIM}")
    os.chown(f"{root}/{VICTIM}", pair[MALLORY].pw_uid, pair[MALLORY].pw_gid)
    done = start_privately(root, state)
    assert done.returncode == 1 and "refusing to use it" in done.stderr, done.stderr
    assert untouched(loot, pair[MALLORY].pw_uid)


def test_a_tmp_root_made_at_install_serves_the_victim_and_mallory_reads_no_upload(
    pair, fresh_tmp_root
):
    root, loot, state = fresh_tmp_root
    run("install", "-d", "-o", "root", "-g", "root", "-m", "0755", root)  # as scripts/setup.sh
    command = [*private_stage(root, state), str(state / "etc-ondemand-hub"), STAGE]
    with running_hub("hostile-tmp", env={"ONDEMAND_HUB_STAGE_COMMAND": json.dumps(command)}) as h:
        s, reply = h.login(VICTIM, PASSWORDS[VICTIM])
        assert reply.status_code == 302, reply.text[-300:]
        h.open_dashboard(s, VICTIM)
        mine = os.lstat(f"{root}/{VICTIM}")
        assert (mine.st_uid, mine.st_mode & 0o7777) == (pair[VICTIM].pw_uid, 0o700)
        target = f"{pair[VICTIM].pw_dir}/secret-upload.bin"
        url = f"{h.url}/user/{VICTIM}/files/fs{quote(target)}"
        r = requests.put(url, data=b"SECRET" * 2**16, timeout=30)
        assert r.status_code == 403  # a new session without the victim's cookies
        r = s.put(url, data=b"SECRET" * 2**16, headers={"X-XSRFToken": xsrf(s, VICTIM)}, timeout=30)
        assert r.status_code == 201, r.text
        os.unlink(target)
    peek = "import os,sys; print(os.listdir(sys.argv[1]))"
    done = as_user(MALLORY, peek, f"{root}/{VICTIM}/client_body")
    assert done.returncode == 1 and "PermissionError" in done.stderr, done.stderr
    assert untouched(loot, pair[MALLORY].pw_uid)


# -- finding 3, sessions: a port squatted by another user never gets the owner's traffic --------

#: mallory's program: read the victim's server's --port= from /proc (any user may), bind it
#: before the server does, and log every request that reaches her.
SQUAT = """\
import os, socket, sys, time
victim_uid, deadline = int(sys.argv[1]), time.monotonic() + 90
while time.monotonic() < deadline:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid != victim_uid:
                continue
            argv = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\\0")
        except OSError:
            continue
        ports = [a[7:] for a in argv if a.startswith("--port=")]
        if not ports:
            continue
        s = socket.socket()
        s.bind(("127.0.0.1", int(ports[0])))
        s.listen()
        s.settimeout(1)
        print("bound", ports[0], flush=True)
        while time.monotonic() < deadline:
            try:
                conn, _ = s.accept()
            except TimeoutError:
                continue
            data = conn.recv(4096)  # (the launcher's probe connects and sends nothing)
            if data:
                print("request", data.split(b"\\r\\n")[0].decode(), flush=True)
            conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 6\\r\\n\\r\\npwned!")
            conn.close()
    time.sleep(0.002)
"""


def test_a_session_port_taken_by_another_user_never_gets_the_owners_traffic(pair, tmp_path):
    clusters = Path(f"/var/tmp/ondemand-hub-test-{os.getpid()}-hostile-clusters.d")
    clusters.mkdir(exist_ok=True)  # empty: the built-in local cluster
    entry = pair[MALLORY]
    squatter = subprocess.Popen(
        [PYTHON, "-c", SQUAT, str(pair[VICTIM].pw_uid)],
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=[],
        cwd="/",
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        with running_hub("hostile-local", env={"ONDEMAND_HUB_CLUSTERS_DIR": str(clusters)}) as h:
            s, reply = h.login(VICTIM, PASSWORDS[VICTIM])
            assert reply.status_code == 302, reply.text[-300:]
            token = api_token(h, s, VICTIM)
            r = requests.post(
                f"{h.url}/hub/api/users/{VICTIM}/servers/squat1",
                json={"user_options": {"app": "jupyter", "cluster": "local"}},
                headers=token,
                timeout=60,
            )
            if r.status_code == 500:
                message = r.json()["message"]
            else:
                assert r.status_code == 202, r.text
                message = failed_progress_message(h, token, VICTIM, "squat1")
            assert "another user of this node took it" in message, message
    finally:
        squatter.kill()
        out, _ = squatter.communicate(timeout=10)
        shutil.rmtree(clusters, ignore_errors=True)
        run(STAGE, "pun", "stop", "--user", VICTIM, check=False)
    assert out.startswith("bound "), out  # the attack was made...
    assert "request" not in out, out  # ...and nothing of the victim's reached mallory


def test_when_the_pun_stops_nobody_else_can_take_its_address(hub, pair, victim):
    """With a TCP port, any local user could bind a stopped PUN's port and receive what the
    proxy still routes there; the socket's directory is closed to them."""
    sock = stage("show", "--user", VICTIM)["paths"]["nginx_socket"]
    run(STAGE, "pun", "stop", "--user", VICTIM)
    assert os.path.isdir(os.path.dirname(sock))  # the directory stays, closed
    take = "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])"
    done = as_user(MALLORY, take, sock)
    assert done.returncode == 1 and "PermissionError" in done.stderr, done.stderr
    assert not os.path.exists(sock)
