"""The hub as an unprivileged service account whose only privilege is one sudo rule: PUNs and
sessions alike go through ondemand-stage."""

import json
import shutil
import time
from pathlib import Path

import pytest
import requests

from harness import STAGE, Hub, api_token, make_state_dir, proc_ids, run, stage

SERVICE = "odt-hubsvc"
SUDOERS = Path("/etc/sudoers.d/ondemand-hub-test")


def sudo_rule(account: str) -> str:
    """Exactly the rule documented in docs/security.md, for ``account``."""
    return (
        f"Defaults:{account} !requiretty, env_reset\n"
        f"{account} ALL=(root) NOPASSWD: {STAGE} pun *, {STAGE} user *\n"
    )


RULE = sudo_rule(SERVICE)


STAGE_YML = Path("/etc/ondemand-hub/stage.yml")


@pytest.fixture(scope="module")
def proxy_group_is_the_service_account():
    """The proxy runs as the service account: stage.yml names its group, whose members (and
    the user) may enter each PUN's socket directory, as docs/design.md tells admins."""
    saved = STAGE_YML.read_text() if STAGE_YML.exists() else None
    STAGE_YML.write_text((saved or "") + f"proxy_group: {SERVICE}\n")
    yield
    if saved is None:
        STAGE_YML.unlink()
    else:
        STAGE_YML.write_text(saved)


@pytest.fixture(scope="module")
def service_hub(accounts, tmp_path_factory, proxy_group_is_the_service_account):
    if run("id", SERVICE, check=False).returncode != 0:
        run("useradd", "-r", "-M", "-s", "/usr/sbin/nologin", "-G", "shadow", SERVICE)
    SUDOERS.write_text(RULE)
    SUDOERS.chmod(0o440)
    run("visudo", "-cf", str(SUDOERS))
    state = make_state_dir("service", owner=SERVICE)
    clusters = state / "clusters.d"
    clusters.mkdir()
    (clusters / "hpc.yml").write_text(
        "v2:\n  metadata:\n    title: Test HPC\n  job:\n    adapter: slurm\n"
    )
    env = {
        "ONDEMAND_HUB_STAGE_COMMAND": f'["sudo", "-n", "{STAGE}"]',
        "ONDEMAND_HUB_CLUSTERS_DIR": str(clusters),
    }
    hub = Hub(state, env=env, user=SERVICE)
    hub.start()
    yield hub
    hub.stop()
    hub.stop_puns()
    run("scancel", "-u", "odt-carol", "--name=ondemand-jupyter-svc1", check=False)
    SUDOERS.unlink()
    shutil.rmtree(state, ignore_errors=True)


def test_service_account_hub_runs_unprivileged(service_hub):
    ids = proc_ids(service_hub.proc.pid)
    assert ids["uid"] != 0 and ids["gid"] != 0


def test_login_to_pun_works_end_to_end_through_the_sudo_rule(service_hub, accounts):
    run(STAGE, "pun", "stop", "--user", "odt-carol")
    s, reply = service_hub.login("odt-carol")
    assert reply.status_code == 302, reply.text[-500:]
    page = service_hub.open_dashboard(s, "odt-carol")
    assert "odt-carol" in page.text
    info = stage("status", "--user", "odt-carol")
    assert proc_ids(info["pids"]["server"])["uid"] == accounts["odt-carol"].pw_uid
    audit = Path("/var/log/ondemand-hub/stage.log").read_text().splitlines()
    starts = [json.loads(line) for line in audit if '"command": "start"' in line]
    assert (starts[-1]["caller"], starts[-1]["user"]) == (SERVICE, "odt-carol")


def test_the_service_account_can_run_nothing_else_as_root(service_hub):
    done = run("sudo", "-u", SERVICE, "sudo", "-n", "/usr/bin/id", check=False)
    assert done.returncode != 0
    done = run("sudo", "-u", SERVICE, "sudo", "-n", STAGE, "--help", check=False)
    assert done.returncode != 0  # only `pun …` sub-commands are allowed


def test_a_session_starts_through_the_sudo_rules_with_the_token_kept(service_hub, accounts):
    """sbatch, the session folder, the port file and scancel run as the user through the one
    sudo rule (ondemand-stage user run); the server token travels on the helper's stdin and
    reaches the job only through sbatch's environment, so sudo's env_reset cannot drop it: the
    session authenticates to the hub."""
    hub = service_hub
    s, reply = hub.login("odt-carol")
    assert reply.status_code == 302, reply.text[-500:]
    token = api_token(hub, s, "odt-carol", "svc")
    r = requests.post(
        f"{hub.url}/hub/api/users/odt-carol/servers/svc1",
        json={"user_options": {"app": "jupyter", "bc_num_hours": 1}},
        headers=token,
        timeout=60,
    )
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        model = requests.get(f"{hub.url}/hub/api/users/odt-carol", headers=token, timeout=10)
        if (model.json()["servers"].get("svc1") or {}).get("ready"):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"session not ready\n{hub.log_tail()}")
    r = requests.get(f"{hub.url}/user/odt-carol/svc1/api/status", headers=token, timeout=30)
    assert r.status_code == 200, r.text
    jobs = run("squeue", "-h", "-u", "odt-carol", "-n", "ondemand-jupyter-svc1", "-o", "%i").stdout
    assert jobs.split(), "no job"
    r = requests.delete(
        f"{hub.url}/hub/api/users/odt-carol/servers/svc1", headers=token, timeout=60
    )
    assert r.status_code in (202, 204), r.text
    remaining = run("squeue", "-h", "-t", "PD,R", "-u", "odt-carol", "-n", "ondemand-jupyter-svc1")
    assert remaining.stdout.strip() == ""
