"""Integration fixtures: real Unix accounts, a real JupyterHub with configurable-http-proxy,
real PUNs started by ondemand-stage. Everything here needs root."""

import os
import pwd
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import PASSWORDS, STAGE, ensure_account, run, running_hub  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def require_root():
    if os.geteuid() != 0:
        pytest.fail("integration tests create Unix accounts and run ondemand-stage: run as root")


@pytest.fixture(scope="session")
def accounts():
    """Real accounts: three ordinary ones, one with a disabled shell, one system account."""
    for name, password in PASSWORDS.items():
        shell = "/usr/sbin/nologin" if name == "odt-nologin" else "/bin/bash"
        ensure_account(name, password, shell)
    ensure_account("odt-sys", "Sys-pw-5!", system=True)
    yield {name: pwd.getpwnam(name) for name in [*PASSWORDS, "odt-sys"]}
    for name in PASSWORDS:
        run(STAGE, "pun", "stop", "--user", name, check=False)


@pytest.fixture(scope="module")
def hub(accounts, tmp_path_factory):
    with running_hub(tmp_path_factory.getbasetemp().name) as h:
        yield h
