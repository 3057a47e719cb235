"""A compromised hub account, and a hostile hub admin, try to act as system accounts.

Whoever holds the hub's service account holds exactly the documented sudo rule (one rule for
ondemand-stage: ``pun *`` and ``user *``). With it they try to read the munge key as ``munge``
(forged Slurm credentials, then root on every node), to read a file as each system account,
and to run anything as root, ``slurm``, ``daemon``, a disabled, a locked or an expired account.
A hub admin creates hub users ``daemon``, ``root`` and ``slurm`` through the REST API and starts
a session as each. Every attempt must be refused with a clear message and leave nothing behind
(no file, no folder, no job). Real accounts, real sudo, real Slurm.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
from pathlib import Path

import pytest
import requests
from test_unprivileged_hub import sudo_rule

from harness import (
    SLURM_CLUSTER,
    STAGE,
    Hub,
    api_token,
    ensure_account,
    failed_progress_message,
    make_state_dir,
    run,
)

HUBACCT = "odt-hubacct"
SALLY = "odt-sally"
SALLY_PW = "Sally-pw-7!"
NOSHELL, LOCKED, EXPIRED = "odt-nosh", "odt-lockd", "odt-expd"
SUDOERS = Path("/etc/sudoers.d/ondemand-hub-test-hostile")
AUDIT_LOG = Path("/var/log/ondemand-hub/stage.log")
PROOF = Path("/var/tmp")
SESSION = "hx1"


def as_hub(*argv: str, input: str | None = None):
    """Run ``argv`` as the hub's service account, as its holder would."""
    return run("runuser", "-u", HUBACCT, "--", *argv, check=False, input=input)


def refused_accounts() -> list[pwd.struct_passwd]:
    """Every account on this host the portal does not serve: root and the system accounts
    (uid below 1000) and accounts with a disabled shell (slurm, nobody: uids above 1000)."""
    nologin = {"/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false"}
    return [e for e in pwd.getpwall() if e.pw_uid < 1000 or e.pw_shell in nologin]


@pytest.fixture(scope="module")
def hostile_setup():
    if run("id", HUBACCT, check=False).returncode != 0:
        run("useradd", "-r", "-M", "-s", "/usr/sbin/nologin", "-G", "shadow", HUBACCT)
    ensure_account(SALLY, SALLY_PW)
    ensure_account(NOSHELL, "Nosh-pw-8!", shell="/usr/sbin/nologin")
    ensure_account(LOCKED, "Lockd-pw-9!")
    run("usermod", "-L", LOCKED)  # passwd -l: '!' before the hash
    ensure_account(EXPIRED, "Expd-pw-10!")
    run("usermod", "-e", "1", EXPIRED)  # expired on 1970-01-02
    SUDOERS.write_text(sudo_rule(HUBACCT))
    SUDOERS.chmod(0o440)
    run("visudo", "-cf", str(SUDOERS))
    yield
    SUDOERS.unlink()


def proof_dir(name: str) -> Path:
    path = PROOF / f"odt-hostile-proof-{name}"
    shutil.rmtree(path, ignore_errors=True)
    return path


def test_the_munge_key_cannot_be_read_as_munge(hostile_setup):
    key = Path("/etc/munge/munge.key").read_bytes()
    for argv in (
        ["sudo", "-n", "-u", "munge", "cat", "/etc/munge/munge.key"],
        ["sudo", "-n", "-u", "munge", "/usr/bin/cat", "/etc/munge/munge.key"],
        ["sudo", "-n", "-u", f"#{pwd.getpwnam('munge').pw_uid}", "/usr/bin/cat"]
        + ["/etc/munge/munge.key"],
        ["sudo", "-n", STAGE, "user", "run", "--user", "munge", "--"]
        + ["/usr/bin/cat", "--", "/etc/munge/munge.key"],
    ):
        done = as_hub(*argv)
        assert done.returncode != 0, argv
        assert key.decode(errors="replace") not in done.stdout
    assert "user 'munge' is a system account" in done.stderr


def test_no_file_can_be_read_as_any_system_account(hostile_setup):
    """For each account the portal does not serve, a file only it can read: neither a sudo
    Runas rule nor ondemand-stage gives it to the hub account."""
    secret_dir = Path(make_state_dir("hostile-secrets"))
    os.chmod(secret_dir, 0o755)
    try:
        for entry in refused_accounts():
            secret = secret_dir / f"{entry.pw_name}.secret"
            secret.write_text(f"secret of {entry.pw_name}\n")
            os.chown(secret, entry.pw_uid, entry.pw_gid)
            secret.chmod(0o400)
            for argv in (
                ["sudo", "-n", "-u", entry.pw_name, "/usr/bin/cat", str(secret)],
                ["sudo", "-n", STAGE, "user", "run", "--user", entry.pw_name, "--"]
                + ["/usr/bin/cat", "--", str(secret)],
                ["sudo", "-n", STAGE, "user", "run", "--user", entry.pw_name, "--"]
                + ["/usr/bin/tail", "-n", "1", "--", str(secret)],
            ):
                done = as_hub(*argv)
                assert done.returncode != 0, (entry.pw_name, argv, done.stdout)
                assert "secret of" not in done.stdout + done.stderr, (entry.pw_name, argv)
    finally:
        shutil.rmtree(secret_dir)


def test_nothing_but_the_allowed_programs_runs_even_as_a_portal_user(hostile_setup):
    for argv in (["/bin/sh", "-c", "id"], ["/usr/bin/id"], ["sh"], ["/usr/bin/cat", "/x"]):
        done = as_hub("sudo", "-n", STAGE, "user", "run", "--user", SALLY, "--", *argv)
        assert done.returncode == 2, (argv, done.stdout)
        assert "allowed" in done.stderr or "absolute path" in done.stderr
    done = as_hub("sudo", "-n", STAGE, "--help")  # not covered by the rule
    assert done.returncode != 0 and "usage" not in done.stdout


def test_a_portal_user_is_served(hostile_setup):
    """The control: the same command for an ordinary account runs, as that account."""
    done = as_hub("sudo", "-n", STAGE, "user", "check", "--user", SALLY)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["uid"] == pwd.getpwnam(SALLY).pw_uid
    target = proof_dir(SALLY)
    argv = ["/usr/bin/install", "-d", "-m", "0700", "--", str(target)]
    done = as_hub("sudo", "-n", STAGE, "user", "run", "--user", SALLY, "--", *argv)
    try:
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["returncode"] == 0
        assert target.stat().st_uid == pwd.getpwnam(SALLY).pw_uid
    finally:
        shutil.rmtree(target, ignore_errors=True)


def test_endless_output_and_a_command_that_never_ends_are_cut_off(hostile_setup):
    """A user's port file can be a link to /dev/zero, and ``tail`` can be told to follow: root
    reads at most 1 MiB and waits at most ``--timeout``, then kills the command's group."""
    base = ["sudo", "-n", STAGE, "user", "run", "--user", SALLY]
    done = as_hub(*base, "--", "/usr/bin/cat", "--", "/dev/zero")
    assert done.returncode == 1
    assert done.stderr.strip() == "ondemand-stage: /usr/bin/cat wrote more than 1048576 bytes"
    marker = f"/var/tmp/odt-hostile-follow-{os.getpid()}"
    follow = ["/usr/bin/tail", "-n", "1", "--follow=name", "--retry", "--", marker]
    done = as_hub(*base, "--timeout=2", "--", *follow)
    assert done.returncode == 1
    assert done.stderr.strip() == "ondemand-stage: /usr/bin/tail did not end within 2 s"
    left = run("pgrep", "-u", SALLY, "-f", marker, check=False).stdout.split()
    assert left == []


@pytest.mark.parametrize(
    "name, why",
    [
        ("munge", "is a system account"),
        ("root", "is a system account: it has uid 0"),
        ("daemon", "is a system account"),
        ("slurm", "is disabled: it has a disabled login shell"),
        (NOSHELL, "is disabled: it has a disabled login shell (/usr/sbin/nologin)"),
        (LOCKED, "is locked: its password is locked"),
        (EXPIRED, "is expired: the account expired on 1970-01-02"),
    ],
)
def test_refused_accounts_run_nothing(hostile_setup, name, why):
    target = proof_dir(name)
    argv = ["/usr/bin/install", "-d", "-m", "0700", "--", str(target)]
    done = as_hub("sudo", "-n", STAGE, "user", "run", "--user", name, "--", *argv)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == f"ondemand-stage: user {name!r} {why}" or (
        done.stderr.startswith(f"ondemand-stage: user {name!r} {why}")
    ), done.stderr
    assert not target.exists()  # install -d would have made it
    records = [json.loads(line) for line in AUDIT_LOG.read_text().splitlines()]
    record = [r for r in records if r.get("argv") == argv][-1]  # other tests log meanwhile
    assert (record["caller"], record["command"], record["user"]) == (HUBACCT, "user run", name)
    assert record["outcome"]["error"].startswith(f"user {name!r} {why.split(':')[0]}")
    # PUNs get the same checks (the locked and expired ones are new for them too)
    done = as_hub("sudo", "-n", STAGE, "pun", "status", "--user", name)
    assert done.returncode == 1 and f"user {name!r} {why}" in done.stderr


# --- a hub admin starts sessions for system accounts ------------------------------------------


@pytest.fixture(scope="module")
def admin_hub(hostile_setup):
    """A hub run by the service account with the documented rule, Slurm as its cluster, and
    odt-sally as a hub admin (who may create users and start their servers)."""
    state = make_state_dir("hostile", owner=HUBACCT)
    clusters = state / "clusters.d"
    clusters.mkdir()
    (clusters / "hpc.yml").write_text(SLURM_CLUSTER)
    env = {
        "ONDEMAND_HUB_STAGE_COMMAND": f'["sudo", "-n", "{STAGE}"]',
        "ONDEMAND_HUB_CLUSTERS_DIR": str(clusters),
    }
    hub = Hub(state, env=env, user=HUBACCT)
    with open(state / "hub_config.py", "a") as f:
        f.write(f"c.Authenticator.admin_users = {{{SALLY!r}}}\n")
    hub.start()
    s, reply = hub.login(SALLY, SALLY_PW)
    assert reply.status_code == 302, reply.text[-300:]
    yield hub, api_token(hub, s, SALLY, "admin")
    hub.stop()
    hub.stop_puns()
    shutil.rmtree(state, ignore_errors=True)


def spawn_outcome(hub: Hub, token: dict, name: str) -> str:
    """The message a refused spawn of ``name``'s session gives: the API's error, or the
    failure event of its progress stream."""
    r = requests.post(
        f"{hub.url}/hub/api/users/{name}/servers/{SESSION}",
        json={"user_options": {"app": "jupyter", "bc_num_hours": 1}},
        headers=token,
        timeout=60,
    )
    if r.status_code >= 400:
        return r.json()["message"]
    return failed_progress_message(hub, token, name, SESSION)


@pytest.mark.parametrize(
    "name, why",
    [
        ("daemon", "is a system account"),
        ("root", "is a system account"),
        ("slurm", "is disabled"),
    ],
)
def test_a_hub_admin_cannot_start_a_session_as_a_system_account(admin_hub, name, why):
    hub, token = admin_hub
    r = requests.post(f"{hub.url}/hub/api/users/{name}", headers=token, timeout=10)
    assert r.status_code in (201, 409), r.text  # the hub user exists now
    message = spawn_outcome(hub, token, name)
    assert f"Sessions are refused for {name!r}: user {name!r} {why}" in message
    # nothing was made and nothing was submitted
    home = Path(pwd.getpwnam(name).pw_dir)
    assert not (home / "ondemand" / "sessions" / SESSION).exists()
    jobs = run("squeue", "-h", "-t", "all", "-u", name, "-o", "%i %j").stdout
    assert f"ondemand-jupyter-{SESSION}" not in jobs
    model = requests.get(f"{hub.url}/hub/api/users/{name}", headers=token, timeout=10).json()
    assert not (model["servers"].get(SESSION) or {}).get("ready")
    # the refusal is on record: who asked, for whom
    records = [json.loads(line) for line in AUDIT_LOG.read_text().splitlines()]
    checks = [r for r in records if r["command"] == "user check" and r["user"] == name]
    assert checks[-1]["caller"] == HUBACCT
    assert checks[-1]["outcome"]["error"].startswith(f"user {name!r} {why}")
