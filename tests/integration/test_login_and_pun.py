"""A real user logs in through the real hub and proxy and lands on their own PUN."""

import fcntl
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import requests

from harness import STAGE, children, proc_ids, run, stage


def test_login_lands_on_the_dashboard_served_by_a_pun_running_as_the_user(hub, accounts):
    s, reply = hub.login("odt-alice")
    assert reply.status_code == 302
    page = hub.open_dashboard(s, "odt-alice")
    assert "odt-alice" in page.text
    assert 'href="/user/odt-alice/static/vendor/bootstrap/dist/css/bootstrap.min.css' in page.text

    info = stage("status", "--user", "odt-alice")
    assert info["running"] is True
    alice = accounts["odt-alice"]
    expected_groups = sorted(os.getgrouplist("odt-alice", alice.pw_gid))
    nginx, server = info["pids"]["nginx"], info["pids"]["server"]
    for pid in [server, nginx, *children(nginx)]:
        ids = proc_ids(pid)
        assert ids == {"uid": alice.pw_uid, "gid": alice.pw_gid, "groups": expected_groups}, pid


def test_nginx_serves_the_static_files_itself(hub, accounts):
    s, _ = hub.login("odt-alice")
    hub.open_dashboard(s, "odt-alice")
    r = s.get(f"{hub.url}/user/odt-alice/static/vendor/bootstrap/dist/css/bootstrap.min.css")
    assert r.status_code == 200
    assert r.headers["Server"] == "nginx"
    assert r.headers["Content-Type"].startswith("text/css")


def test_another_users_cookies_cannot_reach_the_dashboard_or_api(hub, accounts):
    alice, _ = hub.login("odt-alice")
    hub.open_dashboard(alice, "odt-alice")
    bob, _ = hub.login("odt-bob")
    hub.open_dashboard(bob, "odt-bob")

    for path in ("dashboard", "api/contents", "api/status"):
        r = bob.get(f"{hub.url}/user/odt-alice/{path}", timeout=30)
        assert r.status_code == 403, (path, r.status_code, r.url)
        assert "odt-alice" not in r.text or "403" in r.text
    r = bob.post(
        f"{hub.url}/user/odt-alice/api/ondemand/announcements/x/dismiss",
        headers={"X-XSRFToken": next(c.value for c in bob.cookies if c.name == "_xsrf")},
        timeout=30,
    )
    assert r.status_code in (403, 405), r.status_code
    # read:users:name (sharing by login name, docs/sharing.md) shows bob alice's name (and
    # whether she is a hub admin), nothing else: not her servers, their URLs or her activity
    r = bob.get(
        f"{hub.url}/hub/api/users/odt-alice",
        headers={"X-XSRFToken": bob.cookies.get("_xsrf", path="/hub/")},
        timeout=30,
    )
    assert r.status_code == 200 and set(r.json()) <= {"kind", "name", "admin", "user_info"}
    assert r.json()["user_info"] is None, r.text
    r = bob.get(
        f"{hub.url}/hub/api/users/odt-alice/shared",
        headers={"X-XSRFToken": bob.cookies.get("_xsrf", path="/hub/")},
        timeout=30,
    )
    assert r.status_code in (403, 404), r.text
    # and alice still gets her own page
    assert alice.get(f"{hub.url}/user/odt-alice/dashboard").status_code == 200


def test_wrong_password_is_refused_without_starting_anything(hub, accounts):
    run(STAGE, "pun", "stop", "--user", "odt-carol")
    s, reply = hub.login("odt-carol", "not-the-password")
    assert reply.status_code == 403
    assert "Invalid username or password" in reply.text
    assert stage("status", "--user", "odt-carol")["running"] is False


def test_disabled_and_system_accounts_get_a_page_that_says_why(hub, accounts):
    _, reply = hub.login("odt-nologin")
    assert reply.status_code == 403
    assert "is disabled (login shell /usr/sbin/nologin)" in reply.text
    _, reply = hub.login("odt-sys", "Sys-pw-5!")
    assert reply.status_code == 403
    assert "is a system account and cannot use the portal" in reply.text
    for name in ("odt-nologin", "odt-sys"):
        done = run(STAGE, "pun", "status", "--user", name, check=False)
        assert done.returncode == 1  # the helper refuses them too


def test_changed_groups_restart_the_pun_at_next_login(hub, accounts):
    s, _ = hub.login("odt-alice")
    hub.open_dashboard(s, "odt-alice")
    before = stage("status", "--user", "odt-alice")
    run("groupadd", "-f", "odt-project")
    gid = int(run("getent", "group", "odt-project").stdout.split(":")[2])
    run("usermod", "-aG", "odt-project", "odt-alice")
    try:
        s, _ = hub.login("odt-alice")
        hub.open_dashboard(s, "odt-alice")
        after = stage("status", "--user", "odt-alice")
        assert after["pids"]["server"] != before["pids"]["server"]
        assert gid in proc_ids(after["pids"]["server"])["groups"]
        assert gid in proc_ids(after["pids"]["nginx"])["groups"]
    finally:
        run("gpasswd", "-d", "odt-alice", "odt-project", check=False)


def test_clean_stops_an_idle_pun_and_leaves_a_busy_one(hub, accounts):
    for name in ("odt-alice", "odt-bob"):
        s, _ = hub.login(name)
        hub.open_dashboard(s, name)
    bob_socket = stage("status", "--user", "odt-bob")["socket"]
    time.sleep(1.5)
    # bob is in the middle of a request (an upload still sending its body): busy
    with socket.socket(socket.AF_UNIX) as busy:
        busy.connect(bob_socket)
        busy.sendall(
            b"PUT /user/odt-bob/api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n"
        )
        time.sleep(0.3)
        cleaned = stage("clean", "--idle-timeout", "1", "--user", "odt-alice", "--user", "odt-bob")
        assert [c["user"] for c in cleaned if c["was_running"]] == ["odt-alice"]
        assert stage("status", "--user", "odt-alice")["running"] is False
        assert stage("status", "--user", "odt-bob")["running"] is True
    # the hub notices at next poll/visit and starts a fresh PUN for alice
    s, _ = hub.login("odt-alice")
    hub.open_dashboard(s, "odt-alice")
    assert stage("status", "--user", "odt-alice")["running"] is True

    # a terminal's shell keeps a PUN with no open connection (the shell ends after the shell
    # extension's own idle time); once it is gone the PUN is idle again
    xsrf = next(c.value for c in s.cookies if c.name == "_xsrf" and "odt-alice" in c.path)
    r = s.post(f"{hub.url}/user/odt-alice/api/terminals", headers={"X-XSRFToken": xsrf}, timeout=30)
    assert r.status_code == 200, r.text
    terminal = r.json()["name"]
    time.sleep(1.5)
    assert stage("status", "--user", "odt-alice")["shells"] == 1
    assert stage("clean", "--idle-timeout", "1", "--user", "odt-alice") == []
    assert stage("status", "--user", "odt-alice")["running"] is True
    r = s.delete(
        f"{hub.url}/user/odt-alice/api/terminals/{terminal}",
        headers={"X-XSRFToken": xsrf},
        timeout=30,
    )
    assert r.status_code == 204, r.text
    time.sleep(1.5)
    assert stage("status", "--user", "odt-alice")["shells"] == 0
    cleaned = stage("clean", "--idle-timeout", "1", "--user", "odt-alice")
    assert [c["user"] for c in cleaned if c["was_running"]] == ["odt-alice"]


def test_hub_restart_leaves_the_pun_running_and_reachable(hub, accounts):
    s, _ = hub.login("odt-alice")
    hub.open_dashboard(s, "odt-alice")
    before = stage("status", "--user", "odt-alice")
    hub.stop()
    assert stage("status", "--user", "odt-alice")["pids"] == before["pids"]
    assert stage("status", "--user", "odt-alice")["running"] is True
    hub.start()
    page = hub.open_dashboard(s, "odt-alice")  # the same browser session, no new login
    assert "odt-alice" in page.text
    assert stage("status", "--user", "odt-alice")["pids"] == before["pids"]


def test_stage_refuses_bad_input_with_one_line_and_exit_codes():
    done = run(STAGE, "pun", "status", "--user", "../x", check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.count("\n") == 1 and "does not match" in done.stderr
    done = run(STAGE, "pun", "frobnicate", check=False)
    assert done.returncode == 2 and done.stderr.startswith("ondemand-stage: ")
    done = subprocess.run(
        [STAGE, "pun", "start", "--user", "odt-alice"],
        input='{"env": {"LD_PRELOAD": "/tmp/evil.so"}}',
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "refusing variable 'LD_PRELOAD'" in done.stderr


def test_site_config_reaches_every_pun_and_hub_pages_are_branded(hub, accounts):
    login_page = requests.get(f"{hub.url}/hub/login", timeout=10).text
    assert 'class="navbar-brand ondemand-brand"' in login_page
    site_dir = Path("/etc/ondemand-hub/jupyter")
    site_dir.mkdir(parents=True, exist_ok=True)
    config = site_dir / "jupyter_server_config.py"
    assert not config.exists(), "the test would overwrite a real site config"
    config.write_text('c.DashboardExtensionApp.site_title = "Example HPC OnDemand"\n')
    try:
        run(STAGE, "pun", "stop", "--user", "odt-bob")
        s, _ = hub.login("odt-bob")
        page = hub.open_dashboard(s, "odt-bob")
        assert "Example HPC OnDemand" in page.text
    finally:
        config.unlink()


def test_start_stop_and_clean_of_one_user_never_overlap(hub, accounts):
    """A cron `clean` and a login's `start` for the same user take turns (per-user lock)."""
    lock = Path("/var/lib/ondemand-hub/stage/state/.odt-bob.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = subprocess.Popen([STAGE, "pun", "stop", "--user", "odt-bob"])
        time.sleep(1.0)
        assert waiting.poll() is None  # blocked behind the lock
        fcntl.flock(held, fcntl.LOCK_UN)
        assert waiting.wait(timeout=30) == 0


def test_every_privileged_action_is_in_the_audit_log(hub, accounts):
    log = Path("/var/log/ondemand-hub/stage.log")
    before = log.read_text().count("\n") if log.exists() else 0
    run(STAGE, "pun", "stop", "--user", "odt-bob")
    run(STAGE, "pun", "stop", "--user", "../etc", check=False)
    lines = [json.loads(line) for line in log.read_text().splitlines()[before:]]
    assert [(r["command"], r["user"], r["caller"]) for r in lines] == [
        ("stop", "odt-bob", "root"),
        ("stop", "../etc", "root"),
    ]
    assert "error" in lines[1]["outcome"]
    assert oct(log.stat().st_mode & 0o777) == "0o600" and log.stat().st_uid == 0
