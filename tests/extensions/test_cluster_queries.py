"""The PUN's one query service per cluster (ondemand_dashboard/clusterqueries.py): the Sessions
form and the Jobs composer ask the same sinfo, against the real Slurm of the test machine; the
interval and timeout traits are one set, configurable for every page extension at once; a
scheduler that does not answer is "nothing to offer", remembered briefly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SLURM_CLUSTER, dead_controller_cluster
from jupyter_server.utils import url_path_join
from traitlets.config import Config

EXTENSIONS = ("ondemand_sessions", "ondemand_jobs", "ondemand_status")


@pytest.fixture
def clusters_d(tmp_path) -> Path:
    return tmp_path / "clusters.d"


@pytest.fixture
def jp_server_config(sessions_server_config, fake_hub, tmp_path, monkeypatch, clusters_d):
    assert shutil.which("sinfo"), "sinfo missing: run scripts/slurm.sh start"
    monkeypatch.setenv("HOME", str(tmp_path))
    config = sessions_server_config
    config.ServerApp.jpserver_extensions["ondemand_jobs"] = True
    config.ServerApp.jpserver_extensions["ondemand_status"] = True
    config.JobsExtensionApp = Config({"clusters_dir": str(clusters_d)})
    config.PortalExtensionApp = Config({"command_timeout": 7.0, "partitions_interval": 600.0})
    return config


def apps(jp_serverapp) -> list:
    return [jp_serverapp.web_app.settings[name] for name in EXTENSIONS]


async def test_one_setting_for_every_page_extension(jp_serverapp):
    for app in apps(jp_serverapp):
        assert (app.command_timeout, app.partitions_interval) == (7.0, 600.0), app.name
        assert (app.history_interval, app.accounts_interval) == (60.0, 300.0), app.name


async def test_the_form_and_the_composer_share_one_sinfo(
    jp_serverapp, clusters_d, http_server_client, jp_base_url, jp_auth_header
):
    (clusters_d / "test.yml").write_text(SLURM_CLUSTER)
    sessions, jobs, status = apps(jp_serverapp)
    assert sessions.queries is jobs.queries is status.queries
    cluster = sessions.cluster("test")
    parts = await sessions.partitions(cluster)
    assert parts and any(p.default for p in parts)  # the real partitions
    response = await http_server_client.fetch(
        url_path_join(jp_base_url, "api/ondemand/composer/partitions?cluster=test"),
        headers=jp_auth_header,
    )
    assert response.code == 200 and b'"debug"' in response.body
    assert await jobs.partitions(cluster) == parts
    assert sessions.queries.calls == 1  # one sinfo for both pages


async def test_a_cluster_without_a_scheduler_asks_nothing(jp_serverapp):
    sessions = apps(jp_serverapp)[0]
    local = sessions.cluster(None)  # the built-in local cluster
    assert local.adapter == "local"
    assert await sessions.partitions(local) == []
    assert await sessions.accounts(local) is None
    assert (await sessions.slurm_history(local)).available is False
    assert sessions.queries.calls == 0


async def test_a_dead_controller_is_nothing_to_offer_and_remembered(jp_serverapp, tmp_path):
    clusters_d = tmp_path / "clusters.d"
    dead_controller_cluster(tmp_path, clusters_d, "down")
    sessions, jobs, _ = apps(jp_serverapp)
    cluster = sessions.cluster("down")
    assert await sessions.partitions(cluster) is None
    assert await jobs.partitions(cluster) is None  # remembered: not asked again at once
    history = await jobs.slurm_history(cluster)
    assert not history.available and history.note
    assert await jobs.history(cluster) == {"available": False, "note": history.note}
    assert await sessions.job_history(cluster) == {}
    assert sessions.queries.calls == 2  # one sinfo, one sacct
