"""The ``ondemand-hub`` admin command: ``ondemand-hub doctor`` checks an installation and says
what to fix, one line per check."""

from __future__ import annotations

import argparse
import grp
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from traitlets.config.loader import PyFileConfigLoader

from ondemand_hub.stage.config import STAGE_CONFIG_PATH, StageConfig, load_config
from ondemand_hub.stage.errors import ConfigError, PunError
from ondemand_hub.stage.process import ensure_root_dir

PREFIX = "/opt/ondemand-hub"


HUB_CONFIG_PATH = "/etc/jupyterhub/jupyterhub_config.py"


@dataclass(frozen=True)
class Finding:
    ok: bool
    check: str
    detail: str
    #: ok, but a risk an admin must know about (printed as WARN; does not fail the doctor)
    warning: bool = False


def check_world_runnable(path: str) -> Finding:
    """Every directory up to ``path`` must be searchable, and the file executable, by others:
    PUN processes run as the users, not as root (a Python inside /root does not work)."""
    check = f"{path} runnable by every account"
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    for i in range(2, len(parts) + 1):
        current = os.sep.join(parts[:i]) or os.sep
        try:
            mode = os.stat(current).st_mode
        except OSError as e:
            return Finding(False, check, f"{current}: {e.strerror}")
        needed = stat.S_IXOTH if stat.S_ISDIR(mode) or current == real else 0
        if needed and not mode & needed:
            return Finding(False, check, f"{current} is not o+x; run: chmod o+x {current}")
    return Finding(True, check, real)


def check_root_owned(path: str) -> Finding:
    """The helper sudo runs as root must not be writable by anyone else."""
    check = f"{path} owned by root, writable only by root"
    try:
        st = os.stat(path)
    except OSError as e:
        return Finding(False, check, f"{e.strerror}; install the package into {PREFIX}/venv")
    if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return Finding(False, check, f"run: chown root: {path} && chmod go-w {path}")
    return Finding(True, check, "ok")


def check_command(argv: list[str], what: str, fix: str) -> Finding:
    exe = shutil.which(argv[0])
    if exe is None:
        return Finding(False, what, f"{argv[0]} not found; {fix}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    text = (done.stdout + done.stderr).strip().splitlines()
    return Finding(done.returncode == 0, what, text[0] if text else f"exit {done.returncode}")


def check_stage_config(path: str) -> Finding:
    try:
        config = load_config(path)
    except ConfigError as e:
        return Finding(False, "stage.yml valid", str(e))
    source = path if os.path.exists(path) else "built-in defaults"
    return Finding(True, "stage.yml valid", f"{source}; min_uid {config.min_uid}")


def check_vendor(vendor_dir: str, packages: list[str]) -> Finding:
    missing = [p for p in packages if not os.path.isdir(os.path.join(vendor_dir, p))]
    if missing:
        return Finding(False, "front-end libraries", f"missing {missing}; run: make setup")
    return Finding(True, "front-end libraries", ", ".join(packages))


def check_root_trees(config: StageConfig) -> Finding:
    """The directories ondemand-stage trusts, checked as it checks them at every start."""
    check = "ondemand-stage's root-owned directories"
    roots = (config.config_root, config.state_root, config.run_root, config.log_root)
    for root in (*roots, config.tmp_root):
        try:
            ensure_root_dir(root, create=False)
        except PunError as e:
            return Finding(False, check, str(e))
    return Finding(True, check, ", ".join((*roots, config.tmp_root)))


def check_proxy_group(config: StageConfig) -> Finding:
    """PUN sockets are reachable by their user and by stage.yml's proxy_group only."""
    check = "proxy_group exists"
    try:
        grp.getgrnam(config.proxy_group)
    except KeyError:
        return Finding(
            False, check, f"no group {config.proxy_group!r}; fix proxy_group in stage.yml"
        )
    return Finding(
        True,
        check,
        f"{config.proxy_group}: the account that runs configurable-http-proxy must be in it "
        "(root for the embedded setup), or no PUN answers the proxy",
    )


ORIGIN_CHECK = "one origin per user"


def origin_finding(subdomain_host: str) -> Finding:
    """What ``JupyterHub.subdomain_host`` means for users who do not trust each other."""
    if not subdomain_host:
        return Finding(
            True,
            ORIGIN_CHECK,
            "no: every user's pages and sessions share one origin, so any user can take over "
            "another's account with a link to a page of their own session; set "
            "c.JupyterHub.subdomain_host (wildcard DNS + certificate, docs/security.md)",
            warning=True,
        )
    parsed = urlparse(subdomain_host)
    if parsed.scheme != "https":
        return Finding(
            True,
            ORIGIN_CHECK,
            f"users at <user>.{parsed.netloc}, but over {parsed.scheme}: cookies and tokens "
            "travel in clear; use https with a wildcard certificate and "
            "c.JupyterHub.cookie_host_prefix_enabled = True",
            warning=True,
        )
    return Finding(True, ORIGIN_CHECK, f"users at <user>.{parsed.netloc}")


def check_origins(hub_config: str) -> Finding:
    """Read ``JupyterHub.subdomain_host`` from the hub's config file (it is executed, as
    JupyterHub does)."""
    if not os.path.exists(hub_config):
        return Finding(
            True,
            ORIGIN_CHECK,
            f"{hub_config} not found; pass --hub-config <your jupyterhub_config.py>",
            warning=True,
        )
    loader = PyFileConfigLoader(os.path.basename(hub_config), os.path.dirname(hub_config))
    try:
        config = loader.load_config()
    except Exception as e:  # a site's config file is Python: it may raise anything
        return Finding(False, ORIGIN_CHECK, f"{hub_config}: cannot load: {e}")
    return origin_finding(str(config.JupyterHub.get("subdomain_host", "")))


def doctor_checks(hub_config: str = HUB_CONFIG_PATH) -> list[Callable[[], Finding]]:
    bindir = os.path.dirname(os.path.abspath(sys.executable))
    stage_bin = os.path.join(bindir, "ondemand-stage")
    return [
        lambda: check_world_runnable(sys.executable),
        lambda: check_root_owned(stage_bin),
        lambda: check_stage_config(STAGE_CONFIG_PATH),
        lambda: check_command(["nginx", "-v"], "nginx installed", "apt-get install nginx"),
        lambda: check_command(
            [f"{PREFIX}/share/node_modules/.bin/configurable-http-proxy", "--version"],
            "configurable-http-proxy installed",
            "run: make setup",
        ),
        lambda: check_vendor(StageConfig().vendor_dir, StageConfig().vendor_packages),
        lambda: check_origins(hub_config),
        lambda: check_root_trees(stage_config()),
        lambda: check_proxy_group(stage_config()),
    ]


def stage_config() -> StageConfig:
    """stage.yml, or the defaults when it is broken (its own check reports that)."""
    try:
        return load_config(STAGE_CONFIG_PATH)
    except ConfigError:
        return StageConfig()


def doctor(hub_config: str = HUB_CONFIG_PATH) -> int:
    failed = 0
    for check in doctor_checks(hub_config):
        finding = check()
        failed += not finding.ok
        label = "FAIL" if not finding.ok else "WARN" if finding.warning else "OK  "
        print(f"{label} {finding.check}: {finding.detail}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ondemand-hub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    doctor_parser = sub.add_parser(
        "doctor", help="check nginx, the helper, stage.yml, permissions, per-user origins"
    )
    doctor_parser.add_argument(
        "--hub-config",
        default=HUB_CONFIG_PATH,
        help=f"the hub's jupyterhub_config.py (default {HUB_CONFIG_PATH})",
    )
    args = parser.parse_args(argv)
    return doctor(args.hub_config)


if __name__ == "__main__":
    sys.exit(main())
