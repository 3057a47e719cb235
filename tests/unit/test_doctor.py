"""ondemand-hub doctor: each check says what is wrong and how to fix it."""

import os
import shutil
import tempfile
from pathlib import Path

from ondemand_hub.cli import (
    Finding,
    check_origins,
    check_proxy_group,
    check_root_owned,
    check_root_trees,
    check_stage_config,
    check_vendor,
    check_world_runnable,
    origin_finding,
)
from ondemand_hub.stage.config import StageConfig

REPO = Path(__file__).resolve().parents[2]


def test_python_inside_a_private_home_is_flagged():
    base = tempfile.mkdtemp(dir="/var/tmp")
    os.chmod(base, 0o755)
    home = Path(base) / "home"
    (home / "bin").mkdir(parents=True)
    python = home / "bin" / "python3"
    python.write_text("")
    python.chmod(0o755)
    home.chmod(0o700)
    finding = check_world_runnable(str(python))
    assert not finding.ok
    assert finding.detail == f"{home} is not o+x; run: chmod o+x {home}"
    shutil.rmtree(base)


def test_world_runnable_file_passes():
    directory = tempfile.mkdtemp(dir="/var/tmp")
    try:
        os.chmod(directory, 0o755)
        exe = os.path.join(directory, "x")
        with open(exe, "w"):
            pass
        os.chmod(exe, 0o755)
        assert check_world_runnable(exe).ok
    finally:
        shutil.rmtree(directory)


def test_group_writable_helper_is_flagged(tmp_path):
    helper = tmp_path / "ondemand-stage"
    helper.write_text("")
    helper.chmod(0o775)
    finding = check_root_owned(str(helper))
    assert not finding.ok and "chmod go-w" in finding.detail


def test_bad_stage_config_is_reported(tmp_path):
    path = tmp_path / "stage.yml"
    path.write_text("min_uid: lots\n")
    path.chmod(0o644)
    finding = check_stage_config(str(path))
    assert not finding.ok
    assert finding.detail == f"{path}: key 'min_uid': expected int, got str"


def test_missing_vendor_package_is_reported(tmp_path):
    (tmp_path / "bootstrap").mkdir()
    finding = check_vendor(str(tmp_path), ["bootstrap", "bootstrap-icons"])
    assert not finding.ok and "missing ['bootstrap-icons']" in finding.detail


def test_one_shared_origin_is_a_warning_that_says_what_it_allows():
    finding = origin_finding("")
    assert finding.ok and finding.warning
    assert "any user can take over another's account" in finding.detail
    assert "c.JupyterHub.subdomain_host" in finding.detail


def test_per_user_origins_over_http_warn_and_over_https_pass():
    http = origin_finding("http://portal.localhost:8000")
    assert http.ok and http.warning and "travel in clear" in http.detail
    https = origin_finding("https://portal.example.org")
    assert https == Finding(True, "one origin per user", "users at <user>.portal.example.org")


def test_origins_are_read_from_the_reference_config(tmp_path, monkeypatch):
    monkeypatch.setenv("ONDEMAND_HUB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("ONDEMAND_HUB_SUBDOMAIN_HOST", raising=False)
    assert check_origins(str(REPO / "jupyterhub_config.py")).warning
    monkeypatch.setenv("ONDEMAND_HUB_SUBDOMAIN_HOST", "https://portal.example.org")
    assert check_origins(str(REPO / "jupyterhub_config.py")) == Finding(
        True, "one origin per user", "users at <user>.portal.example.org"
    )


def test_a_broken_hub_config_fails_the_check(tmp_path):
    config = tmp_path / "jupyterhub_config.py"
    config.write_text("c.JupyterHub.subdomain_host = undefined_name\n")
    finding = check_origins(str(config))
    assert not finding.ok and "cannot load" in finding.detail


def stage_config_under(base: Path, **fields) -> StageConfig:
    roots = ("config_root", "state_root", "run_root", "log_root", "tmp_root")
    return StageConfig(**{name: str(base / name) for name in roots}, **fields)


def test_root_trees_missing_or_writable_by_others_are_reported(tmp_path):
    base = tmp_path / "portal"
    config = stage_config_under(base)
    finding = check_root_trees(config)
    assert not finding.ok and finding.detail == (
        f"{base} does not exist (made at install: scripts/setup.sh)"
    )
    for name in ("config_root", "state_root", "run_root", "log_root", "tmp_root"):
        (base / name).mkdir(parents=True, mode=0o755)
    assert check_root_trees(config).ok
    (base / "tmp_root").chmod(0o777)  # anyone could plant links in it
    finding = check_root_trees(config)
    assert not finding.ok and finding.detail.startswith(f"refusing to use {base / 'tmp_root'}")


def test_an_unknown_proxy_group_is_reported():
    assert check_proxy_group(StageConfig(proxy_group="root")).ok
    finding = check_proxy_group(StageConfig(proxy_group="odt-no-such-group"))
    assert not finding.ok and "no group 'odt-no-such-group'" in finding.detail
