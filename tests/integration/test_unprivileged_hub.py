"""The hub as an unprivileged service account whose only privilege is one sudo rule."""

import json
import shutil
from pathlib import Path

import pytest

from harness import STAGE, Hub, make_state_dir, proc_ids, run, stage

SERVICE = "odt-hubsvc"
SUDOERS = Path("/etc/sudoers.d/ondemand-hub-test")
# exactly the rule documented in docs/security.md, for the test's service account
RULE = f"Defaults:{SERVICE} !requiretty, env_reset\n{SERVICE} ALL=(root) NOPASSWD: {STAGE} pun *\n"


@pytest.fixture(scope="module")
def service_hub(accounts, tmp_path_factory):
    if run("id", SERVICE, check=False).returncode != 0:
        run("useradd", "-r", "-M", "-s", "/usr/sbin/nologin", "-G", "shadow", SERVICE)
    SUDOERS.write_text(RULE)
    SUDOERS.chmod(0o440)
    run("visudo", "-cf", str(SUDOERS))
    state = make_state_dir("service", owner=SERVICE)
    hub = Hub(state, env={"ONDEMAND_HUB_STAGE_COMMAND": f'["sudo", "-n", "{STAGE}"]'}, user=SERVICE)
    hub.start()
    yield hub
    hub.stop()
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
