"""The VS Code app's wiring on the real hub and Slurm, with a NAMED FAKE of code-server.

Real code-server cannot be installed on these machines (4.100+ needs Node 24, this one has
Node 20; 4.99's install downloads ripgrep from GitHub, which is unreachable). What this test
checks is ours: the job script, the jupyter-server-proxy entry it writes, the private Unix
socket, hub OAuth in front, the folder argument. ``harness.FAKE_CODE_SERVER`` stands in for
code-server: it takes code-server's arguments, listens on ``--socket`` and answers every request
with what it was started with. It is on PATH only while this module runs."""

import os
from pathlib import Path

import pytest
import requests

from harness import (
    api_token,
    ensure_account,
    fake_code_server,
    run,
    server_model,
    slurm_hub,
    wait_for,
)

VERA, VIC = "odt-vera", "odt-vic"
PASSWORDS = {VERA: "Vera-pw-12!", VIC: "Vic-pw-13!"}


@pytest.fixture(scope="module")
def vscode_hub(accounts):
    for name, password in PASSWORDS.items():
        ensure_account(name, password)
    try:
        with fake_code_server(), slurm_hub("vscode") as hub:
            yield hub
    finally:
        run("scancel", "-u", VERA, check=False)


def test_vscode_opens_the_folder_through_a_private_socket_only_for_the_owner(vscode_hub):
    hub = vscode_hub
    s, reply = hub.login(VERA, PASSWORDS[VERA])
    assert reply.status_code == 302, hub.log_tail()
    project = Path(f"/home/{VERA}/project-x")
    run("runuser", "-u", VERA, "--", "mkdir", "-p", str(project))
    token = api_token(hub, s, VERA, "test_vscode")

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
        return server_model(hub, token, VERA, "code1").get("ready")

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
