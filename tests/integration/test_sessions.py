"""Interactive sessions end to end: a real hub, the real single-node Slurm, real accounts.
Alice launches JupyterLab through the REST API, reaches it through the proxy, Bob cannot, and
deleting the server cancels the job; a refused option submits nothing; a job that dies before
its app is up fails the spawn with its own output; a hub restart keeps a running and a queued
session (docs/sessions.md)."""

import os
import pwd
import shutil
from pathlib import Path

import pytest
import requests

from harness import (
    REPO,
    api_token,
    failed_progress_message,
    run,
    server_model,
    session_log_url,
    slurm_hub,
    wait_for,
)

ALICE = "odt-alice"


@pytest.fixture(scope="module")
def session_hub(accounts):
    # The bundled apps, plus a test-only one whose script fails at once.
    apps = Path(f"/var/tmp/ondemand-hub-test-{os.getpid()}-apps")
    shutil.rmtree(apps, ignore_errors=True)
    shutil.copytree(REPO / "apps", apps)
    boom = apps / "boom"
    shutil.copytree(REPO / "apps" / "jupyter", boom)
    (boom / "script.sh.j2").write_text(
        '#!/bin/bash\necho "boom: module not found ({{ app_id }})" >&2\nexit 1\n'
    )
    (boom / "manifest.yml").write_text("title: Boom\ndescription: fails at once\n")
    try:
        with slurm_hub("sessions", env={"ONDEMAND_HUB_BUNDLED_APPS": str(apps)}) as hub:
            yield hub
    finally:
        for name in ("lab1", "run1", "queued1"):
            run("scancel", "-u", ALICE, f"--name=ondemand-jupyter-{name}", check=False)
        shutil.rmtree(apps, ignore_errors=True)


@pytest.fixture(scope="module")
def alice(session_hub):
    s, reply = session_hub.login(ALICE)
    assert reply.status_code == 302, session_hub.log_tail()
    return s, api_token(session_hub, s, ALICE, "test_sessions")


def read_cmdline(pid: str) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        return ""


def jobs_named(name: str) -> dict[str, str]:
    """Alice's queued or running jobs called ``name`` (finished ones stay listed a while)."""
    out = run("squeue", "-h", "-t", "PD,CF,R,CG", "-u", ALICE, "-n", name, "-o", "%i|%T").stdout
    return dict(line.split("|") for line in out.split())


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

    wait_for(lambda: server_model(hub, token, ALICE, "lab1").get("ready"), 60, "ready", hub)
    assert jobs_named("ondemand-jupyter-lab1") == {job_id: "RUNNING"}

    # Through the proxy, with the browser's OAuth dance (the server's own cookie). A page, not
    # an API path (those answer 403 instead of redirecting): the job's own log in the session
    # folder, which is the server's root.
    base = f"{hub.url}/user/{ALICE}/lab1"
    r = s.get(session_log_url(base), timeout=30)
    assert r.status_code == 200 and "ondemand-hub: starting jupyter" in r.text, r.status_code
    r = s.get(f"{base}/api/status", timeout=30)
    assert r.status_code == 200 and r.url == f"{base}/api/status", (r.status_code, r.url)
    assert "started" in r.json()

    # A Python kernel (ipykernel, from the portal's venv) starts in the session, as alice.
    r = requests.post(f"{base}/api/kernels", json={"name": "python3"}, headers=token, timeout=60)
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    assert [k["id"] for k in requests.get(f"{base}/api/kernels", headers=token).json()] == [kernel]
    alice_uid = pwd.getpwnam(ALICE).pw_uid
    kernels = [p for p in os.listdir("/proc") if p.isdigit() and kernel in read_cmdline(p)]
    assert kernels and all(os.stat(f"/proc/{p}").st_uid == alice_uid for p in kernels)

    bob, _ = hub.login("odt-bob")
    r = bob.get(session_log_url(base), timeout=30)
    assert r.status_code == 403, (r.status_code, r.url)
    assert bob.get(f"{base}/api/status", timeout=30).status_code == 403

    r = requests.delete(f"{hub.url}/hub/api/users/{ALICE}/servers/lab1", headers=token, timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: job_id not in jobs_named("ondemand-jupyter-lab1"), 20, "job gone", hub)
    wait_for(lambda: not server_model(hub, token, ALICE, "lab1"), 20, "server stopped", hub)


def launch(hub, token, name, **options):
    r = requests.post(
        f"{hub.url}/hub/api/users/{ALICE}/servers/{name}",
        json={"user_options": {"app": "jupyter", "bc_num_hours": 1, **options}},
        headers=token,
        timeout=30,
    )
    assert r.status_code in (201, 202), r.text


def test_a_job_that_dies_before_its_app_is_up_fails_with_its_own_output(session_hub, alice):
    hub = session_hub
    _s, token = alice
    r = requests.post(
        f"{hub.url}/hub/api/users/{ALICE}/servers/boom1",
        json={"user_options": {"app": "boom"}},
        headers=token,
        timeout=30,
    )
    # A spawn that fails within JupyterHub's slow_spawn_timeout (10 s) answers the POST with
    # the error; a slower one answers 202 and the progress stream ends with it.
    if r.status_code == 500:
        message = r.json()["message"]
    else:
        assert r.status_code == 202, r.text
        message = failed_progress_message(hub, token, ALICE, "boom1")
    assert "boom: module not found (boom)" in message, message
    assert "before its server was up" in message, message
    assert "before its server was up: failed, exit code 1" in message, message  # scontrol
    wait_for(lambda: not server_model(hub, token, ALICE, "boom1"), 20, "failed server removed", hub)


def reach(s, base) -> int:
    """Through the proxy: a page first (the OAuth dance sets the server's cookie), then the
    server's API; the API's status code."""
    r = s.get(session_log_url(base), timeout=30)
    assert r.status_code == 200 and "ondemand-hub: starting" in r.text, (r.status_code, r.url)
    r = s.get(f"{base}/api/status", timeout=30)
    assert r.url == f"{base}/api/status", r.url
    return r.status_code


def test_hub_restart_keeps_a_running_and_a_queued_session(session_hub, alice):
    """One CPU for run1, two for queued1 on a two-CPU node: queued1 waits for run1. The hub
    stops (cleanup_servers = False) and starts again: both jobs keep their ids, run1 is routed
    again, queued1 is re-adopted (pending "check") and comes up once run1 is deleted."""
    hub = session_hub
    s, token = alice
    launch(hub, token, "run1", bc_num_slots=1)
    wait_for(lambda: server_model(hub, token, ALICE, "run1").get("ready"), 60, "run1 up", hub)
    launch(hub, token, "queued1", bc_num_slots=2)
    queued = wait_for(lambda: jobs_named("ondemand-jupyter-queued1"), 15, "queued1 job", hub)
    (run_id,) = jobs_named("ondemand-jupyter-run1")
    (queued_id,) = queued
    assert queued[queued_id] == "PENDING"

    hub.stop()
    assert jobs_named("ondemand-jupyter-run1") == {run_id: "RUNNING"}
    assert jobs_named("ondemand-jupyter-queued1") == {queued_id: "PENDING"}
    hub.start()

    wait_for(lambda: server_model(hub, token, ALICE, "run1").get("ready"), 30, "run1", hub)
    base = f"{hub.url}/user/{ALICE}/run1"
    assert reach(s, base) == 200
    model = server_model(hub, token, ALICE, "queued1")
    assert model and not model["ready"] and model["pending"] == "check", model
    assert jobs_named("ondemand-jupyter-queued1") == {queued_id: "PENDING"}

    r = requests.delete(f"{hub.url}/hub/api/users/{ALICE}/servers/run1", headers=token, timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: server_model(hub, token, ALICE, "queued1").get("ready"), 60, "adopt", hub)
    assert jobs_named("ondemand-jupyter-queued1") == {queued_id: "RUNNING"}
    assert reach(s, f"{hub.url}/user/{ALICE}/queued1") == 200

    r = requests.delete(
        f"{hub.url}/hub/api/users/{ALICE}/servers/queued1", headers=token, timeout=60
    )
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: not jobs_named("ondemand-jupyter-queued1"), 20, "queued1 cancelled", hub)
