"""The VS Code app's wiring on the real hub and Slurm, with a NAMED FAKE of code-server.

Real code-server cannot be installed on these machines (4.100+ needs Node 24, this one has
Node 20; 4.99's install downloads ripgrep from GitHub, which is unreachable). What this test
checks is ours: the job script, the jupyter-server-proxy entry it writes, the private Unix
socket, hub OAuth in front, the folder argument. ``FAKE_CODE_SERVER`` below stands in for
code-server: it takes code-server's arguments, listens on ``--socket`` and answers every request
with what it was started with. It is on PATH only while this module runs."""

import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from harness import REPO, ensure_account, run, running_hub

SLURM_SH = str(REPO / "scripts" / "slurm.sh")
VERA, VIC = "odt-vera", "odt-vic"
PASSWORDS = {VERA: "Vera-pw-12!", VIC: "Vic-pw-13!"}
FAKE_PATH = Path("/usr/local/bin/code-server")
FAKE_CODE_SERVER = r"""#!/usr/bin/python3
# FAKE code-server for tests/integration/test_vscode.py: not the real program.
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


@pytest.fixture(scope="module")
def vscode_hub(accounts):
    if run("bash", SLURM_SH, "status", check=False).returncode != 0:
        pytest.fail("Slurm is not running (make test starts it)")
    if FAKE_PATH.exists():
        pytest.fail(f"{FAKE_PATH} exists: a real code-server? This test would replace it")
    for name, password in PASSWORDS.items():
        ensure_account(name, password)
    clusters = Path(f"/var/tmp/ondemand-hub-test-{os.getpid()}-vscode-clusters.d")
    clusters.mkdir(exist_ok=True)
    (clusters / "hpc.yml").write_text(
        "v2:\n  metadata:\n    title: Test HPC\n  job:\n    adapter: slurm\n"
    )
    FAKE_PATH.write_text(FAKE_CODE_SERVER)
    FAKE_PATH.chmod(0o755)
    try:
        with running_hub("vscode", env={"ONDEMAND_HUB_CLUSTERS_DIR": str(clusters)}) as hub:
            yield hub
    finally:
        FAKE_PATH.unlink(missing_ok=True)
        run("scancel", "-u", VERA, check=False)
        shutil.rmtree(clusters, ignore_errors=True)


def wait_for(predicate, timeout, what, hub):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in {timeout} s\n{hub.log_tail()}")


def test_vscode_opens_the_folder_through_a_private_socket_only_for_the_owner(vscode_hub):
    hub = vscode_hub
    s, reply = hub.login(VERA, PASSWORDS[VERA])
    assert reply.status_code == 302, hub.log_tail()
    project = Path(f"/home/{VERA}/project-x")
    run("runuser", "-u", VERA, "--", "mkdir", "-p", str(project))
    r = s.post(
        f"{hub.url}/hub/api/users/{VERA}/tokens",
        json={"note": "test_vscode", "expires_in": 600},
        headers={"X-XSRFToken": s.cookies.get("_xsrf", path="/hub/")},
        timeout=10,
    )
    token = {"Authorization": f"token {r.json()['token']}"}

    r = requests.post(
        f"{hub.url}/hub/api/users/{VERA}/servers/code1",
        json={"user_options": {"app": "vscode", "working_dir": "../odt-vic"}},
        headers=token,
        timeout=30,
    )
    assert r.status_code == 400 and "working_dir" in r.json()["message"], r.text

    r = requests.post(
        f"{hub.url}/hub/api/users/{VERA}/servers/code1",
        json={"user_options": {"app": "vscode", "working_dir": "project-x"}},
        headers=token,
        timeout=30,
    )
    assert r.status_code in (201, 202), r.text

    def ready():
        model = requests.get(f"{hub.url}/hub/api/users/{VERA}", headers=token, timeout=10)
        return (model.json()["servers"].get("code1") or {}).get("ready")

    wait_for(ready, 60, "VS Code session ready", hub)

    # Connect: the session's default URL is /vscode/, which starts code-server on first visit.
    base = f"{hub.url}/user/{VERA}/code1"
    r = s.get(f"{base}/", timeout=60)
    assert r.status_code == 200 and r.url.startswith(f"{base}/vscode/"), (r.status_code, r.url)
    seen = r.json()
    assert seen["fake"] == "code-server"
    assert seen["folder"] == str(project) and seen["auth"] == "none"
    assert seen["uid"] == int(run("id", "-u", VERA).stdout)
    private = os.path.dirname(seen["socket"])
    assert os.stat(private).st_mode & 0o777 == 0o700 and os.stat(private).st_uid == seen["uid"]

    vic, _ = hub.login(VIC, PASSWORDS[VIC])
    assert vic.get(f"{base}/vscode/", timeout=30).status_code == 403

    r = requests.delete(f"{hub.url}/hub/api/users/{VERA}/servers/code1", headers=token, timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: not os.path.exists(private), 20, "private directory removed", hub)
