"""`shell/ssh/<host>` for real: a real OpenSSH server (Debian's sshd, on 127.0.0.1 and a free
port, with its own host key and a config that allows public-key logins only) is the login host
"localhost"; the web shell's terminal runs the real ssh client as the user, through the hub,
the proxy and the PUN, and the remote shell answers as that user over SSH."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from test_shell import connect, create_terminal, type_line

from harness import STAGE, ensure_account, free_port, run, running_hub, terminal_output_until

USER, PASSWORD = "odt-sshy", "Sshy-pw-14!"
SHELL_CONFIG = Path("/etc/ondemand-hub/jupyter/jupyter_ondemand_shell_config.py")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not os.path.exists("/usr/sbin/sshd"):
        pytest.fail("openssh-server is not installed (scripts/setup.sh --test installs it)")
    state = tmp_path_factory.mktemp("sshd")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(state / "host_ed25519"))
    port = free_port()
    (state / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {state / 'host_ed25519'}\n"
        f"PidFile {state / 'sshd.pid'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n"
        f"AllowUsers {USER}\nAuthorizedKeysFile .ssh/authorized_keys\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    log = open(state / "sshd.log", "wb")
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(state / "sshd_config")], stderr=log
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"sshd did not start: {(state / 'sshd.log').read_text()}")
    yield port
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def ssh_hub(accounts, sshd):
    """The user's key in their authorized_keys; the PUNs of this user only (the config file is
    read by every PUN) allow ssh to "localhost" on sshd's port."""
    ensure_account(USER, PASSWORD)
    home = Path(f"/home/{USER}")
    shutil.rmtree(home / ".ssh", ignore_errors=True)
    run("runuser", "-u", USER, "--", "mkdir", "-m", "0700", str(home / ".ssh"))
    key = home / ".ssh" / "id_ed25519"
    run("runuser", "-u", USER, "--", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    run("runuser", "-u", USER, "--", "cp", f"{key}.pub", str(home / ".ssh" / "authorized_keys"))
    assert not SHELL_CONFIG.exists(), f"would overwrite {SHELL_CONFIG}"
    SHELL_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    SHELL_CONFIG.write_text(
        "import getpass\n"
        f"if getpass.getuser() == {USER!r}:\n"
        '    c.ShellExtensionApp.ssh_hosts = ["localhost"]\n'
        f'    c.ShellExtensionApp.ssh_command = ["ssh", "-p", "{sshd}",'
        ' "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes"]\n'
    )
    run(STAGE, "pun", "stop", "--user", USER, check=False)
    try:
        with running_hub("shell-ssh") as hub:
            yield hub
    finally:
        SHELL_CONFIG.unlink(missing_ok=True)
        run(STAGE, "pun", "stop", "--user", USER, check=False)


async def test_ssh_to_a_login_host_runs_the_real_ssh_as_the_user(ssh_hub):
    hub = ssh_hub
    s, reply = hub.login(USER, PASSWORD)
    assert reply.status_code == 302, hub.log_tail()
    hub.open_dashboard(s, USER)
    page = s.get(f"{hub.url}/user/{USER}/shell/ssh/localhost", timeout=30)
    assert page.status_code == 200, page.status_code
    model = create_terminal(hub, s, USER, host="localhost")
    assert model["host"] == "localhost"
    ws = await connect(hub, USER, s, model["name"])
    try:
        # the remote side: a login shell over SSH (SSH_CONNECTION is set by sshd)
        await type_line(ws, 'echo "REMOTE user=$(id -un) via=${SSH_CONNECTION%% *}"')
        output = await terminal_output_until(ws, r"REMOTE user=\S+ via=\S+", timeout=30)
        assert f"REMOTE user={USER} via=127.0.0.1" in output, output
        await type_line(ws, "exit")
        await terminal_output_until(ws, r"Connection to localhost closed|logout", timeout=20)
    finally:
        ws.close()
