"""Interactive sessions end to end: a real hub, the real single-node Slurm, real accounts.
Alice launches JupyterLab through the REST API, reaches it through the proxy, Bob cannot, and
deleting the server cancels the job; a refused option submits nothing."""

import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from harness import REPO, run, running_hub

SLURM_SH = str(REPO / "scripts" / "slurm.sh")
ALICE = "odt-alice"


@pytest.fixture(scope="module")
def session_hub(accounts):
    if run("bash", SLURM_SH, "status", check=False).returncode != 0:
        pytest.fail("Slurm is not running (make test starts it)")
    clusters = Path(f"/var/tmp/ondemand-hub-test-{os.getpid()}-clusters.d")
    clusters.mkdir(exist_ok=True)
    (clusters / "hpc.yml").write_text(
        "v2:\n  metadata:\n    title: Test HPC\n  job:\n    adapter: slurm\n"
    )
    env = {
        "ONDEMAND_HUB_CLUSTERS_DIR": str(clusters),
        "ONDEMAND_HUB_BUNDLED_APPS": str(REPO / "apps"),
    }
    try:
        with running_hub("sessions", env=env) as hub:
            yield hub
    finally:
        run("scancel", "-u", ALICE, "--name=ondemand-jupyter-lab1", check=False)
        shutil.rmtree(clusters, ignore_errors=True)


@pytest.fixture(scope="module")
def alice(session_hub):
    s, reply = session_hub.login(ALICE)
    assert reply.status_code == 302, session_hub.log_tail()
    r = s.post(
        f"{session_hub.url}/hub/api/users/{ALICE}/tokens",
        json={"note": "test_sessions", "expires_in": 600},
        headers={"X-XSRFToken": s.cookies.get("_xsrf", path="/hub/")},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return s, {"Authorization": f"token {r.json()['token']}"}


def jobs_named(name: str) -> dict[str, str]:
    """Alice's queued or running jobs called ``name`` (finished ones stay listed a while)."""
    out = run("squeue", "-h", "-t", "PD,CF,R,CG", "-u", ALICE, "-n", name, "-o", "%i|%T").stdout
    return dict(line.split("|") for line in out.split())


def wait_for(predicate, timeout: float, what: str, hub):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in {timeout} s\n{hub.log_tail()}")


def server_model(hub, token_headers, name):
    r = requests.get(f"{hub.url}/hub/api/users/{ALICE}", headers=token_headers, timeout=10)
    return r.json()["servers"].get(name)


def test_refused_option_is_a_400_and_submits_nothing(session_hub, alice):
    _s, token = alice
    r = requests.post(
        f"{session_hub.url}/hub/api/users/{ALICE}/servers/bad1",
        json={"user_options": {"app": "jupyter", "runtime": "999:00:00"}},
        headers=token,
        timeout=30,
    )
    assert r.status_code == 400, r.text
    assert "'runtime'" in r.json()["message"]
    assert jobs_named("ondemand-jupyter-bad1") == {}


def test_alice_launches_jupyter_reaches_it_bob_cannot_delete_cancels(session_hub, alice):
    hub = session_hub
    s, token = alice
    r = requests.post(
        f"{hub.url}/hub/api/users/{ALICE}/servers/lab1",
        json={"user_options": {"app": "jupyter", "bc_num_hours": 1}},
        headers=token,
        timeout=30,
    )
    assert r.status_code in (201, 202), r.text
    jobs = wait_for(lambda: jobs_named("ondemand-jupyter-lab1"), 15, "job in squeue", hub)
    (job_id,) = jobs
    session_dir = Path(f"/home/{ALICE}/ondemand/sessions/lab1")
    assert session_dir.owner() == ALICE and session_dir.stat().st_mode & 0o777 == 0o700

    wait_for(lambda: (server_model(hub, token, "lab1") or {}).get("ready"), 60, "ready", hub)
    assert jobs_named("ondemand-jupyter-lab1") == {job_id: "RUNNING"}

    # Through the proxy, with the browser's OAuth dance (the server's own cookie). A page, not
    # an API path (those answer 403 instead of redirecting): the job's own log in the session
    # folder, which is the server's root.
    base = f"{hub.url}/user/{ALICE}/lab1"
    r = s.get(f"{base}/files/output.log", timeout=30)
    assert r.status_code == 200 and "ondemand-hub: starting jupyter" in r.text, r.status_code
    r = s.get(f"{base}/api/status", timeout=30)
    assert r.status_code == 200 and r.url == f"{base}/api/status", (r.status_code, r.url)
    assert "started" in r.json()

    bob, _ = hub.login("odt-bob")
    r = bob.get(f"{base}/files/output.log", timeout=30)
    assert r.status_code == 403, (r.status_code, r.url)
    assert bob.get(f"{base}/api/status", timeout=30).status_code == 403

    r = requests.delete(f"{hub.url}/hub/api/users/{ALICE}/servers/lab1", headers=token, timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: job_id not in jobs_named("ondemand-jupyter-lab1"), 20, "job gone", hub)
    wait_for(lambda: not server_model(hub, token, "lab1"), 20, "server stopped", hub)
