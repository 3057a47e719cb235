"""Test harness shared by the integration, browser and benchmark code: real Unix accounts, a
real JupyterHub with configurable-http-proxy on free ports, and what ondemand-stage reports.
Everything here needs root."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urljoin

import requests

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path("/opt/ondemand-hub/venv/bin")
STAGE = str(VENV_BIN / "ondemand-stage")
PASSWORDS = {
    "odt-alice": "Alice-pw-1!",
    "odt-bob": "Bob-pw-2!",
    "odt-carol": "Carol-pw-3!",
    "odt-nologin": "Nologin-pw-4!",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kw)


def ensure_account(name: str, password: str, shell: str = "/bin/bash", system: bool = False):
    if run("id", name, check=False).returncode != 0:
        run("useradd", *(["-r"] if system else []), "-m", "-s", shell, name)
    run("usermod", "-s", shell, name)
    run("chpasswd", input=f"{name}:{password}\n")


def stage(*args: str) -> dict:
    return json.loads(run(STAGE, "pun", *args).stdout)


class Hub:
    """A JupyterHub process with our reference config, on free ports."""

    def __init__(
        self,
        state_dir: Path,
        env: dict | None = None,
        user: str | None = None,
        subdomains: bool = False,
    ):
        self.state_dir = state_dir
        self.port = free_port()
        # One origin per user: the hub at portal.localhost, each user at <user>.portal.localhost
        # (libnss-myhostname resolves *.localhost to this machine; Chromium does it itself).
        self.host = "portal.localhost" if subdomains else "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        self.subdomains = subdomains
        self.user = user
        #: Accounts that signed in through this hub: their PUNs are stopped with it.
        self.signed_in: set[str] = set()
        self.log_path = state_dir / "hub.log"
        self.proc: subprocess.Popen | None = None
        for name in ("jupyterhub_config.py",):
            shutil.copy(REPO / name, state_dir / "reference_config.py")
        shutil.copy(
            Path(__file__).parent / "integration" / "hub_config.py", state_dir / "hub_config.py"
        )
        self.env = {
            "PATH": f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "ONDEMAND_HUB_STATE_DIR": str(state_dir),
            "ONDEMAND_HUB_PORT": str(self.port),
            "ONDEMAND_HUB_HUB_PORT": str(free_port()),
            "ONDEMAND_HUB_PROXY_API_PORT": str(free_port()),
            "ONDEMAND_HUB_REFERENCE_CONFIG": str(state_dir / "reference_config.py"),
            **({"ONDEMAND_HUB_SUBDOMAIN_HOST": self.url} if subdomains else {}),
            **(env or {}),
        }

    def user_url(self, name: str) -> str:
        """Scheme, host and port that serve ``name``'s PUN and sessions."""
        return f"http://{name}.{self.host}:{self.port}" if self.subdomains else self.url

    def start(self, timeout: float = 60) -> Hub:
        kwargs = {}
        if self.user:
            entry = pwd.getpwnam(self.user)
            kwargs = dict(
                user=entry.pw_uid,
                group=entry.pw_gid,
                extra_groups=os.getgrouplist(self.user, entry.pw_gid),
            )
            self.env["HOME"] = str(self.state_dir)
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "jupyterhub"), "-f", str(self.state_dir / "hub_config.py")],
                cwd=self.state_dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited: {self.log_tail()}")
            try:
                if requests.get(f"{self.url}/hub/api", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"hub did not come up: {self.log_tail()}")

    def stop(self) -> None:
        """Stop the hub (and the proxy it started), as an admin would; PUNs keep running."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def stop_puns(self) -> None:
        """Stop the PUN of every account that signed in here: PUNs outlive their hub by design,
        but not the test that started them."""
        for name in sorted(self.signed_in):
            run(STAGE, "pun", "stop", "--user", name, check=False)

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def login(
        self, name: str, password: str | None = None
    ) -> tuple[requests.Session, requests.Response]:
        """POST the login form like a browser; returns the session and the (unfollowed) reply."""
        self.signed_in.add(name)
        s = requests.Session()
        s.get(f"{self.url}/hub/login", timeout=10)
        reply = s.post(
            f"{self.url}/hub/login",
            data={
                "username": name,
                "password": password or PASSWORDS[name],
                "_xsrf": s.cookies.get("_xsrf"),
            },
            allow_redirects=False,
            timeout=30,
        )
        if reply.status_code == 302:  # the browser goes on to /hub/spawn, which starts the PUN
            s.get(urljoin(self.url, reply.headers["Location"]), timeout=60)
        return s, reply

    def open_dashboard(
        self, s: requests.Session, name: str, timeout: float = 45
    ) -> requests.Response:
        """Follow the browser's path to /user/<name>/dashboard until the PUN answers it."""
        target = f"{self.user_url(name)}/user/{name}/dashboard"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = s.get(target, timeout=30)
            if r.status_code == 200 and r.url == target:
                return r
            time.sleep(0.2)
        raise AssertionError(
            f"dashboard of {name} not ready: {r.status_code} {r.url}\n{self.log_tail()}"
        )


def make_state_dir(tag: str, owner: str | None = None) -> Path:
    """A hub state dir outside /tmp/pytest-of-root (0700), so a service account can use it."""
    path = Path("/var/tmp") / f"ondemand-hub-test-{os.getpid()}-{tag}"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(mode=0o700)
    if owner:
        shutil.chown(path, owner, owner)
    return path


def proc_ids(pid: int) -> dict:
    """Real uid, gid and supplementary groups of a live process, read from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return {
        "uid": int(fields["Uid"][0]),
        "gid": int(fields["Gid"][0]),
        "groups": sorted(int(g) for g in fields["Groups"]),
    }


def children(pid: int) -> list[int]:
    out = run("ps", "-o", "pid=", "--ppid", str(pid), check=False).stdout
    return [int(p) for p in out.split()]


@contextlib.contextmanager
def running_hub(tag: str, **hub_options):
    """A started Hub with a fresh state dir; stopped and removed afterwards."""
    hub = Hub(make_state_dir(tag), **hub_options)
    try:
        yield hub.start()
    finally:
        hub.stop()
        hub.stop_puns()
        shutil.rmtree(hub.state_dir, ignore_errors=True)


# --- interactive sessions ----------------------------------------------------------------------

SLURM_SH = str(REPO / "scripts" / "slurm.sh")
SLURM_CLUSTER = "v2:\n  metadata:\n    title: Test HPC\n  job:\n    adapter: slurm\n"
#: What scripts/slurm.sh built: the portal's address on the compute nodes' bridge, the partition
#: of the compute nodes, and each node's name, address and network namespace.
SLURM_CLUSTER_STATE = Path("/run/slurm/cluster.json")


def slurm_cluster() -> dict:
    """scripts/slurm.sh's description of the cluster it built (/run/slurm/cluster.json)."""
    return json.loads(SLURM_CLUSTER_STATE.read_text())


@contextlib.contextmanager
def slurm_hub(tag: str, env: dict | None = None):
    """A started Hub whose only cluster is this machine's Slurm (a clusters.d of its own); its
    API listens on the portal's address on the compute nodes' bridge, which their sessions reach."""
    if run("bash", SLURM_SH, "status", check=False).returncode != 0:
        raise RuntimeError("Slurm is not running (make test starts it)")
    clusters = Path(f"/var/tmp/ondemand-hub-test-{os.getpid()}-{tag}-clusters.d")
    clusters.mkdir(exist_ok=True)
    (clusters / "hpc.yml").write_text(SLURM_CLUSTER)
    hub_env = {
        "ONDEMAND_HUB_CLUSTERS_DIR": str(clusters),
        "ONDEMAND_HUB_HUB_IP": slurm_cluster()["portal_address"],
        **(env or {}),
    }
    try:
        with running_hub(tag, env=hub_env) as h:
            yield h
    finally:
        shutil.rmtree(clusters, ignore_errors=True)


def wait_for(predicate, timeout: float, what: str, hub: Hub | None = None, interval: float = 0.2):
    """``predicate()``'s first true value within ``timeout`` s, else an AssertionError with the
    hub's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen in {timeout} s\n{hub.log_tail() if hub else ''}")


def api_token(hub: Hub, session: requests.Session, user: str, note: str = "test") -> dict:
    """Headers with a new 10-minute API token of a signed-in ``user``."""
    r = session.post(
        f"{hub.url}/hub/api/users/{user}/tokens",
        json={"note": note, "expires_in": 600},
        headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/")},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"token {r.json()['token']}"}


def server_model(hub: Hub, token: dict, user: str, name: str) -> dict:
    """The hub's model of ``user``'s named server ``name`` ({} when it has none)."""
    r = requests.get(f"{hub.url}/hub/api/users/{user}", headers=token, timeout=10)
    return r.json()["servers"].get(name) or {}


def failed_progress_message(hub: Hub, token: dict, user: str, name: str) -> str:
    """The message of the failure event that ends a spawn's progress stream."""
    events = []
    with requests.get(
        f"{hub.url}/hub/api/users/{user}/servers/{name}/progress",
        headers=token,
        stream=True,
        timeout=60,
    ) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if events[-1].get("failed") or events[-1].get("ready"):
                    break
    assert events and events[-1].get("failed"), events
    return events[-1]["message"]


def session_log_url(base: str) -> str:
    """A session's output.log through its own server (rooted at the home folder), ``base``
    being ``<hub>/user/<u>/<session>``."""
    return f"{base}/files/ondemand/sessions/{base.rsplit('/', 1)[-1]}/output.log"


def sign_in_with_form(page, hub: Hub, name: str, password: str) -> None:
    """Fill JupyterHub's real login form in a Playwright page and wait for the dashboard."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    hub.signed_in.add(name)
    page.goto(f"{hub.url}/hub/login")
    page.locator("#username_input").fill(name)
    page.locator("#password_input").fill(password)
    page.get_by_role("button", name="Sign in").click()
    dashboard = f"{hub.user_url(name)}/user/{name}/dashboard"
    try:
        page.wait_for_url(dashboard, timeout=45_000)
    except PlaywrightTimeoutError as e:
        raise AssertionError(f"not on {dashboard} but {page.url}\n{hub.log_tail()}") from e


async def terminal_output_until(ws, pattern: str, timeout: float = 20) -> str:
    """A jupyter-server terminal's output over the websocket ``ws``, read until ``pattern`` (a
    regex) appears in it; an AssertionError with what came when it does not in ``timeout`` s."""
    seen = ""

    async def read() -> str:
        nonlocal seen
        while not re.search(pattern, seen):
            message = await ws.read_message()
            assert message is not None, f"websocket closed; output so far: {seen!r}"
            kind, *data = json.loads(message)
            if kind == "stdout":
                seen += data[0]
        return seen

    try:
        return await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise AssertionError(f"{pattern!r} not in the output: {seen!r}") from None


# --- VS Code -----------------------------------------------------------------------------------

#: A NAMED FAKE of code-server: real code-server cannot be installed on these machines (4.100+
#: needs Node 24, this one has Node 20; 4.99's install downloads ripgrep from GitHub). It takes
#: code-server's arguments, listens on ``--socket`` and answers every request with what it was
#: started with, so a test sees what our job script and proxy entry gave it.
FAKE_CODE_SERVER_PATH = Path("/usr/local/bin/code-server")
FAKE_CODE_SERVER = r"""#!/usr/bin/python3
# FAKE code-server for the VS Code tests (harness.fake_code_server): not the real program.
import http.server, json, os, socketserver, sys

args = sys.argv[1:]
sock = args[args.index("--socket") + 1]
folder = args[-1]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"fake": "code-server", "folder": folder, "uid": os.getuid(),
                           "auth": args[args.index("--auth") + 1], "socket": sock,
                           "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "unix"

class Server(socketserver.UnixStreamServer):
    def get_request(self):
        request, _ = super().get_request()
        return request, ("unix", 0)

Server(sock, Handler).serve_forever()
"""


@contextlib.contextmanager
def fake_code_server():
    """FAKE_CODE_SERVER as ``code-server`` on every account's PATH while the block runs."""
    if FAKE_CODE_SERVER_PATH.exists():
        raise RuntimeError(f"{FAKE_CODE_SERVER_PATH} exists: a real code-server? Not replacing it")
    FAKE_CODE_SERVER_PATH.write_text(FAKE_CODE_SERVER)
    FAKE_CODE_SERVER_PATH.chmod(0o755)
    try:
        yield FAKE_CODE_SERVER_PATH
    finally:
        FAKE_CODE_SERVER_PATH.unlink(missing_ok=True)
