"""Files through the real stack (proxy → the user's nginx → jupyter-server as the user), with two
real accounts: what the OS forbids a user, their Files app forbids too."""

import os
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from harness import STAGE, run

SITE_CONFIG = Path("/etc/ondemand-hub/jupyter/jupyter_server_config.py")


def owned(path: Path, user: str, mode: int, text: str | None = None) -> Path:
    if text is None:
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.write_text(text)
    shutil.chown(path, user, user)
    path.chmod(mode)
    return path


def xsrf(session, user: str) -> str:
    return next(c.value for c in session.cookies if c.name == "_xsrf" and user in c.path)


def fs(hub, user: str, path: str) -> str:
    # dots encoded, or the HTTP client would resolve "/../" itself before sending
    return f"{hub.url}/user/{user}/files/fs{quote(path).replace('/../', '/%2E%2E/')}"


@pytest.fixture(scope="module")
def alice_private(accounts):
    home = Path(accounts["odt-alice"].pw_dir)
    private = owned(home / "private", "odt-alice", 0o700)
    owned(private / "secret.txt", "odt-alice", 0o600, "alice's secret\n")
    yield private
    shutil.rmtree(private, ignore_errors=True)


@pytest.fixture
def bob(hub, accounts):
    s, _ = hub.login("odt-bob")
    hub.open_dashboard(s, "odt-bob")
    return s


def test_owner_lists_and_downloads_through_nginx(hub, accounts, alice_private):
    s, _ = hub.login("odt-alice")
    hub.open_dashboard(s, "odt-alice")
    r = s.get(fs(hub, "odt-alice", str(alice_private)), headers={"Accept": "application/json"})
    assert r.status_code == 200
    assert [e["name"] for e in r.json()["entries"]] == ["secret.txt"]
    r = s.get(fs(hub, "odt-alice", str(alice_private / "secret.txt")))
    assert (r.status_code, r.text) == (200, "alice's secret\n")
    assert r.headers["Server"] == "nginx"  # sent by nginx (X-Accel-Redirect), not Python
    assert "attachment" in r.headers["Content-Disposition"]


def test_other_user_cannot_list_read_write_or_download_a_private_dir(hub, bob, alice_private):
    json_headers = {"Accept": "application/json"}
    r = bob.get(fs(hub, "odt-bob", str(alice_private)), headers=json_headers)
    assert r.status_code == 403 and r.json()["status"] == "error"
    r = bob.get(fs(hub, "odt-bob", str(alice_private / "secret.txt")))
    assert r.status_code == 403 and "alice's secret" not in r.text
    r = bob.get(f"{hub.url}/user/odt-bob/files/zip{quote(str(alice_private))}")
    assert r.status_code == 403 and "alice's secret" not in r.text
    headers = {"X-XSRFToken": xsrf(bob, "odt-bob")}
    r = bob.put(fs(hub, "odt-bob", str(alice_private / "planted.txt")), data=b"x", headers=headers)
    assert r.status_code == 403
    assert not (alice_private / "planted.txt").exists()
    r = bob.post(
        f"{hub.url}/user/odt-bob/files/api/delete",
        json={"paths": [str(alice_private / "secret.txt")]},
        headers=headers,
    )
    assert (alice_private / "secret.txt").exists()
    # and bob's cookies do not open alice's own Files app
    r = bob.get(fs(hub, "odt-alice", str(alice_private)), headers=json_headers)
    assert r.status_code == 403


def test_upload_put_is_written_by_nginx_and_placed_atomically(hub, bob, accounts):
    home = Path(accounts["odt-bob"].pw_dir)
    target = home / "uploaded.bin"
    target.unlink(missing_ok=True)
    body = os.urandom(3 * 2**20)
    r = bob.put(
        fs(hub, "odt-bob", str(target)), data=body, headers={"X-XSRFToken": xsrf(bob, "odt-bob")}
    )
    assert r.status_code == 201, r.text
    assert target.read_bytes() == body
    assert target.stat().st_uid == accounts["odt-bob"].pw_uid
    target.unlink()


def test_interrupted_upload_leaves_no_file_and_no_temp(hub, bob, accounts):
    home = Path(accounts["odt-bob"].pw_dir)
    target = home / "interrupted.bin"
    port = int(hub.url.rsplit(":", 1)[1])
    cookie = "; ".join(f"{c.name}={c.value}" for c in bob.cookies)
    body_dir = Path("/var/tmp/ondemand-hub/odt-bob/client_body")
    before = set(os.listdir(body_dir)) if body_dir.exists() else set()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        head = (
            f"PUT /user/odt-bob/files/fs{quote(str(target))} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Cookie: {cookie}\r\nX-XSRFToken: {xsrf(bob, 'odt-bob')}\r\n"
            f"Content-Length: {50 * 2**20}\r\n\r\n"
        )
        sock.sendall(head.encode() + os.urandom(5 * 2**20))
        time.sleep(0.5)
    time.sleep(1.0)
    assert not target.exists()
    after = set(os.listdir(body_dir)) if body_dir.exists() else set()
    assert after - before == set()
    assert not [n for n in os.listdir(home) if "interrupted" in n]


@pytest.fixture
def allowlisted_alice(hub, accounts):
    home = Path(accounts["odt-alice"].pw_dir)
    allowed = owned(home / "allowed", "odt-alice", 0o755)
    owned(allowed / "ok.txt", "odt-alice", 0o644, "fine\n")
    owned(home / "outside.txt", "odt-alice", 0o644, "OUTSIDE-CONTENT\n")
    link = allowed / "escape"
    link.unlink(missing_ok=True)
    link.symlink_to(home / "outside.txt")
    os.lchown(link, accounts["odt-alice"].pw_uid, accounts["odt-alice"].pw_gid)
    SITE_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    assert not SITE_CONFIG.exists(), "would overwrite a real site config"
    SITE_CONFIG.write_text(f"c.FilesExtensionApp.allowlist = [{str(allowed)!r}]\n")
    run(STAGE, "pun", "stop", "--user", "odt-alice")
    s, _ = hub.login("odt-alice")
    hub.open_dashboard(s, "odt-alice")
    yield s, allowed, home
    SITE_CONFIG.unlink()
    run(STAGE, "pun", "stop", "--user", "odt-alice")
    shutil.rmtree(allowed)
    (home / "outside.txt").unlink()


def test_allowlist_holds_against_dotdot_and_symlinks(hub, allowlisted_alice):
    s, allowed, home = allowlisted_alice
    assert s.get(fs(hub, "odt-alice", str(allowed / "ok.txt"))).text == "fine\n"
    for path in (f"{allowed}/../outside.txt", str(allowed / "escape"), str(home), "/etc/passwd"):
        r = s.get(fs(hub, "odt-alice", path), headers={"Accept": "application/json"})
        assert r.status_code == 403, (path, r.status_code)
        assert "OUTSIDE-CONTENT" not in r.text
