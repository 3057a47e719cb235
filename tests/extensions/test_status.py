"""System status against the real single-node Slurm (the extension runs sinfo and squeue itself,
as in a PUN; here as the test process's account): numbers that match sinfo and squeue for a
known load, one query per interval shared by every page, a dead controller said plainly; and
the dashboard's quota warnings and status card from real quota files."""

from __future__ import annotations

import asyncio
import getpass
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SLURM_CLUSTER, dead_controller_cluster
from jupyter_server.utils import url_path_join
from traitlets.config import Config

# tests/extensions/pytest.ini's pythonpath predates this extension: import the source tree.

LOCAL_CLUSTER = "v2:\n  metadata:\n    title: Portal host\n  job:\n    adapter: local\n"
ME = getpass.getuser()  # the Unix account the server runs as: the user quota files name


@pytest.fixture
def clusters_d(tmp_path) -> Path:
    directory = tmp_path / "clusters.d"
    directory.mkdir()
    return directory


@pytest.fixture
def quota_file(tmp_path) -> Path:
    return tmp_path / "quota" / "quota.json"


@pytest.fixture
def status_settings() -> dict:
    return {}


@pytest.fixture
def jp_server_config(dashboard_config, clusters_d, quota_file, status_settings):
    config = dashboard_config
    config.ServerApp.jpserver_extensions["ondemand_status"] = True
    config.StatusExtensionApp = Config(
        {
            "clusters_dir": str(clusters_d),
            "quota_paths": [str(quota_file.parent / "%{user}.json"), str(quota_file)],
            **status_settings,
        }
    )
    return config


@pytest.fixture
def slurm_cluster(clusters_d) -> str:
    assert shutil.which("sinfo"), "sinfo missing: run scripts/slurm.sh start"
    (clusters_d / "test.yml").write_text(SLURM_CLUSTER)
    return "test"


@pytest.fixture
def call(http_server_client, jp_base_url, jp_auth_header):
    """``(code, parsed JSON or text)`` of a GET; errors are returned."""

    async def call(path):
        response = await http_server_client.fetch(
            url_path_join(jp_base_url, path),
            headers=jp_auth_header,
            raise_error=False,
            follow_redirects=False,
            request_timeout=40,
        )
        text = response.body.decode()
        try:
            return response.code, json.loads(text)
        except ValueError:
            return response.code, text

    return call


def status_app(jp_serverapp):
    return jp_serverapp.web_app.settings["ondemand_status"]


@pytest.fixture
def submitted(slurm_jobs):
    """Real Slurm jobs of this test; all cancelled afterwards."""
    return lambda *args: slurm_jobs("--job-name=odt-status-test", *args)


def job_state(job_id: str) -> str:
    argv = ["squeue", "-h", "-j", job_id, "-o", "%T"]
    return subprocess.run(argv, capture_output=True, text=True).stdout.strip()


def slurm_says() -> dict[str, dict[str, int]]:
    """Per partition, what sinfo and squeue say right now, counted here independently."""
    sinfo = subprocess.run(
        ["sinfo", "-h", "-o", "%R|%C|%D|%T"], check=True, capture_output=True, text=True
    ).stdout
    parts: dict[str, dict[str, int]] = {}
    for line in sinfo.splitlines():
        name, cpus, nodes, _state = line.split("|")
        alloc, idle, _other, total = (int(x) for x in cpus.split("/"))
        p = parts.setdefault(name, dict(cpus_used=0, cpus_free=0, cpus_total=0, nodes=0))
        p["cpus_used"] += alloc
        p["cpus_free"] += idle
        p["cpus_total"] += total
        p["nodes"] += int(nodes)
    squeue = subprocess.run(
        ["squeue", "-h", "-t", "PD,R", "-o", "%P %T"], check=True, capture_output=True, text=True
    ).stdout
    for p in parts.values():
        p.update(jobs_running=0, jobs_pending=0)
    for line in squeue.splitlines():
        names, state = line.split()
        for name in names.split(","):
            key = "jobs_running" if state == "RUNNING" else "jobs_pending"
            parts[name][key] += 1
    return parts


def shown(cluster: dict) -> dict[str, dict[str, int]]:
    keys = ("cpus_used", "cpus_free", "cpus_total", "jobs_running", "jobs_pending")
    return {
        p["name"]: {**{k: p[k] for k in keys}, "nodes": p["nodes_up"] + p["nodes_down"]}
        for p in cluster["partitions"]
    }


async def test_the_numbers_match_sinfo_and_squeue_for_a_known_load(
    call, slurm_cluster, submitted, jp_serverapp
):
    running = submitted("-c", "1")
    for _ in range(100):
        if job_state(running) == "RUNNING":
            break
        await asyncio.sleep(0.2)
    pending = submitted("-c", "2")  # both CPUs: waits for the running one
    assert job_state(running) == "RUNNING"
    await asyncio.sleep(0.5)
    assert job_state(pending) == "PENDING"

    # Other tests may share this Slurm: compare with what it says right after, a few tries.
    cache = None
    for _ in range(5):
        if cache is not None:
            cache.fetched_at = None  # ask again
        code, body = await call("api/ondemand/status")
        cache = status_app(jp_serverapp).load_cache(status_app(jp_serverapp).clusters()[0])
        if shown(body["clusters"][0]) == slurm_says():
            break
    assert code == 200 and body["status"] == "ok"
    (cluster,) = body["clusters"]
    assert shown(cluster) == slurm_says()
    assert (cluster["id"], cluster["title"], cluster["scheduler"]) == ("test", "Test Slurm", "ok")
    debug = next(p for p in cluster["partitions"] if p["name"] == "debug")
    assert debug["default"] and debug["nodes_up"] == 1 and debug["nodes_down"] == 0
    assert debug["cpus_used"] >= 1 and debug["jobs_running"] >= 1 and debug["jobs_pending"] >= 1
    assert (debug["gpus_used"], debug["gpus_total"]) == (0, 0)
    totals = cluster["totals"]
    nodes = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N %c"], check=True, capture_output=True, text=True
    ).stdout
    cpus = dict(line.split() for line in nodes.splitlines())  # a node in two partitions: once
    assert totals["cpus_total"] == sum(int(n) for n in cpus.values())
    assert totals["nodes_up"] == len(cpus) and totals["jobs_pending"] >= 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", cluster["updated"])

    subprocess.run(["scancel", running, pending], check=True)


async def test_one_sinfo_and_squeue_per_interval_for_every_open_page(
    call, slurm_cluster, jp_serverapp
):
    answers = await asyncio.gather(*(call("api/ondemand/status") for _ in range(5)))
    await call("api/ondemand/status")
    assert all(code == 200 for code, _ in answers)
    app = status_app(jp_serverapp)
    assert app.load_cache(app.clusters()[0]).calls == 1


async def test_a_dead_controller_is_said_plainly(call, clusters_d, tmp_path, jp_serverapp):
    dead_controller_cluster(tmp_path, clusters_d, "down")

    code, body = await call("api/ondemand/status")
    assert code == 200
    (cluster,) = body["clusters"]
    assert (cluster["scheduler"], cluster["partitions"]) == ("unreachable", [])
    assert "Unable to contact slurm controller" in cluster["error"]
    # the failure is remembered for the interval: the next page does not ask again (were Slurm
    # asked, the conf file that is gone now would give another error)
    (tmp_path / "down.conf").unlink()
    assert (await call("api/ondemand/status"))[1] == body

    code, html = await call("status/")
    assert code == 200 and "Scheduler unreachable." in html


async def test_the_status_page_has_a_chart_per_slurm_cluster(call, slurm_cluster, clusters_d):
    (clusters_d / "zlocal.yml").write_text(LOCAL_CLUSTER)
    code, html = await call("status/")
    assert code == 200
    assert "<title>System status · Example HPC Portal</title>" in html
    assert 'data-cluster="test"' in html and "<canvas" in html
    assert "chart.js/dist/chart.umd.js" in html and "status.js" in html
    assert "there are no partitions or queues to show" in html  # the local cluster
    active = re.findall(r'<a class="nav-link[^"]* active" href="([^"]+)"', html)
    assert len(active) == 1 and active[0].endswith("/status/")

    code, body = await call("api/ondemand/status")
    local = next(c for c in body["clusters"] if c["id"] == "zlocal")
    assert (local["adapter"], local["scheduler"], local["partitions"]) == ("local", None, [])


async def test_the_status_scripts_are_served(call, jp_base_url):
    code, html = await call("status/")
    for src in re.findall(r'<script src="([^"]+)"', html):
        path = src[len(jp_base_url) :] if src.startswith(jp_base_url) else src.lstrip("/")
        assert (await call(path))[0] == 200, src


async def test_without_a_cluster_file_the_portal_host_has_no_scheduler(call):
    code, html = await call("status/")
    assert code == 200 and "there are no partitions or queues to show" in html
    (cluster,) = (await call("api/ondemand/status"))[1]["clusters"]
    assert (cluster["id"], cluster["adapter"], cluster["scheduler"]) == ("local", "local", None)


# --- the dashboard --------------------------------------------------------------------------


def quota_document(*entries: dict) -> str:
    return json.dumps({"version": 1, "timestamp": int(time.time()), "quotas": list(entries)})


def quota(user: str, path: str, blocks: int, limit: int, **extra) -> dict:
    return {
        "user": user,
        "path": path,
        "total_block_usage": blocks,
        "block_limit": limit,
        "total_file_usage": 10,
        "file_limit": 1000,
        **extra,
    }


async def test_the_dashboard_warns_about_the_users_quota_above_the_threshold(call, quota_file):
    quota_file.parent.mkdir()
    quota_file.write_text(
        quota_document(
            quota(ME, "/home/me-full", 990, 1000),
            quota(ME, "/home/me-fine", 10, 1000),
            quota("someone-else", "/home/other-full", 1000, 1000),
        )
    )
    code, html = await call("dashboard")
    assert code == 200
    assert "Your disk space quota on /home/me-full is 99% used: 990 KiB of 1000 KiB." in html
    assert "/home/me-fine" not in html and "/home/other-full" not in html
    assert 'aria-valuenow="99"' in html


async def test_the_per_user_file_and_the_threshold(call, quota_file, jp_serverapp):
    quota_file.parent.mkdir()
    (quota_file.parent / f"{ME}.json").write_text(
        quota_document(quota(ME, "/scratch/me", 850, 1000))
    )
    code, html = await call("dashboard")
    assert code == 200 and "/scratch/me" not in html  # 85% < 95%

    status_app(jp_serverapp).quota_threshold = 0.8
    code, html = await call("dashboard")
    assert "Your disk space quota on /scratch/me is 85% used" in html


async def test_a_malformed_quota_file_is_ignored_and_logged(call, quota_file, caplog):
    quota_file.parent.mkdir()
    quota_file.write_text('{"version": 1, "quotas": [')
    (quota_file.parent / f"{ME}.json").write_text(
        quota_document(
            quota(ME, "/bad", "990", 1000),  # a string: this entry is skipped
            quota(ME, "/home/me-full", 1000, 1000),
        )
    )
    code, html = await call("dashboard")
    assert code == 200 and "Welcome, alice" in html
    assert "Your disk space quota on /home/me-full is 100% used" in html
    assert "/bad" not in html
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"Ignoring quota source {quota_file}: not valid JSON" in logged
    assert "quotas[0]: key 'total_block_usage': expected a whole number >= 0, got '990'" in logged


async def test_no_quota_file_no_warning(call):
    code, html = await call("dashboard")
    assert code == 200 and "Quota warnings" not in html


async def test_the_dashboard_has_a_status_card_linking_to_the_page(call, jp_base_url):
    code, html = await call("dashboard")
    assert code == 200
    assert 'id="ondemand-status-widget"' in html
    assert f'href="{jp_base_url}status/"' in html
    assert f'data-api="{jp_base_url}api/ondemand/status"' in html
    script = re.search(r'<script src="([^"]*status-widget\.js[^"]*)"', html).group(1)
    assert (await call(script[len(jp_base_url) :]))[0] == 200


@pytest.fixture
def quota_server(jp_asyncio_loop):
    """A quota server on a random local port: ``/quota.json`` (counts its requests), ``/slow``
    (answers after 3 s), ``/broken`` (HTTP 500)."""
    from tornado import web
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    hits = {"quota": 0}
    document = quota_document(quota(ME, "/remote/me", 1000, 1000))

    class Quota(web.RequestHandler):
        def get(self) -> None:
            hits["quota"] += 1
            self.finish(document)

    class Slow(web.RequestHandler):
        async def get(self) -> None:
            await asyncio.sleep(3)
            self.finish(document)

    class Broken(web.RequestHandler):
        def get(self) -> None:
            raise web.HTTPError(500)

    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    app = web.Application([("/quota.json", Quota), ("/slow", Slow), ("/broken", Broken)])

    async def start() -> HTTPServer:
        server = HTTPServer(app)
        server.add_sockets(sockets)
        return server

    server = jp_asyncio_loop.run_until_complete(start())
    yield f"http://127.0.0.1:{port}", hits
    server.stop()


async def test_quota_urls_are_fetched_once_per_interval_and_never_hold_the_page(
    call, quota_server, jp_serverapp, caplog
):
    base, hits = quota_server
    app = status_app(jp_serverapp)
    app.quota_paths = [f"{base}/quota.json", f"{base}/broken", f"{base}/slow"]
    app.quota_sources.url_timeout = 0.5

    started = time.monotonic()
    code, html = await call("dashboard")
    assert code == 200
    assert time.monotonic() - started < 2.5  # the slow server's 3 s are not waited for
    assert "Your disk space quota on /remote/me is 100% used" in html
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"Ignoring quota source {base}/broken: HTTP 500" in logged
    assert f"Ignoring quota source {base}/slow: HTTP 599" in logged  # timed out

    assert (await call("dashboard"))[0] == 200
    assert hits["quota"] == 1  # reused for quota_url_interval (300 s)
