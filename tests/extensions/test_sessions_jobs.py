"""My sessions cards with what the real single-node Slurm says (the extension runs squeue itself,
as in a PUN; here as the test process's account), the output log and thumbnail endpoints, and
the launch form per cluster (accounts, a local cluster). The hub REST API is the FAKE of
conftest.py (``fake_hub``); Slurm is real (``scripts/slurm.sh start``) except for ``sacctmgr``
with accounts, which cannot succeed without slurmdbd: ``sacctmgr_with_accounts`` stands in for
it with a sample of its output (tests/unit/data/slurm/README.md)."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import random
import re
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from conftest import SLURM_CLUSTER, dead_controller_cluster
from jupyter_server.utils import url_path_join

from ondemand_hub.scheduler.status import JobStatus
from ondemand_sessions.jobs import REQUEUED_TEXT, state_text

REPO = Path(__file__).resolve().parents[2]
SLURM_DATA = REPO / "tests" / "unit" / "data" / "slurm"
LOCAL_CLUSTER = "v2:\n  metadata:\n    title: Portal host\n  job:\n    adapter: local\n"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """The user's home (session folders are ``~/ondemand/sessions/<name>``)."""
    directory = tmp_path / "home"
    directory.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(directory))
    return directory


@pytest.fixture
def jp_server_config(sessions_server_config, fake_hub, home):
    return sessions_server_config


@pytest.fixture
def clusters_d(tmp_path) -> Path:
    """The clusters.d of the test server (empty: the built-in local cluster)."""
    return tmp_path / "clusters.d"


@pytest.fixture
def slurm_cluster(clusters_d) -> str:
    assert shutil.which("squeue"), "squeue missing: run scripts/slurm.sh start"
    (clusters_d / "test.yml").write_text(SLURM_CLUSTER)
    return "test"


@pytest.fixture
def call(http_server_client, jp_base_url, jp_auth_header):
    """``(code, parsed JSON or text, headers)`` of a request; errors are returned."""

    async def call(path, method="GET", body=None, headers=None):
        response = await http_server_client.fetch(
            url_path_join(jp_base_url, path),
            method=method,
            body=None if body is None and method == "GET" else json.dumps(body or {}),
            headers={**jp_auth_header, "Content-Type": "application/json", **(headers or {})},
            raise_error=False,
            follow_redirects=False,
            allow_nonstandard_methods=True,
        )
        if response.headers.get("Content-Type", "").startswith("image/"):
            return response.code, response.body, response.headers
        text = response.body.decode()
        try:
            return response.code, json.loads(text), response.headers
        except ValueError:
            return response.code, text, response.headers

    return call


def unique_name() -> str:
    """A session name no earlier run used (ended jobs stay in squeue for 300 s)."""
    return f"jupyter-{random.randrange(10**6, 10**7)}"


def server(name, cluster=None, **changes) -> dict:
    """A hub server model of a session of the jupyter app (queued or starting by default)."""
    options = {"app": "jupyter", **({"cluster": cluster} if cluster else {})}
    model = {
        "name": name,
        "ready": False,
        "pending": "spawn",
        "stopped": False,
        "url": f"/user/alice/{name}/",
        "started": "2025-01-01T10:00:00.000000Z",
        "last_activity": None,
        "user_options": options,
    }
    return {**model, **changes}


@pytest.fixture
def submitted(slurm_jobs):
    """Real Slurm jobs named like the spawner names them; all cancelled afterwards."""
    return lambda session, *args: slurm_jobs(
        f"--job-name=ondemand-jupyter-{session}", *args, command="sleep 120"
    )


def squeue_state(job_id: str) -> str:
    argv = ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"]
    return subprocess.run(argv, capture_output=True, text=True).stdout.strip()


def sessions_app(jp_serverapp):
    return jp_serverapp.web_app.settings["ondemand_sessions"]


async def cards(call) -> dict[str, dict]:
    code, body, _ = await call("api/ondemand/sessions")
    assert code == 200, body
    return {c["name"]: c for c in body["sessions"]}


@pytest.mark.parametrize(
    "job, text",
    [
        # squeue after Slurm requeued the job (node not responding) and the hub cancelled it
        (JobStatus("7", "CANCELLED", reason="BeginTime"), REQUEUED_TEXT),
        (JobStatus("7", "CANCELLED", reason="JobHeldUser"), "cancelled"),
        (JobStatus("7", "CANCELLED", reason="BeginTime", node="n1"), "cancelled"),
        (JobStatus("7", "PENDING", reason="BeginTime"), "queued"),  # --begin by hand
        (JobStatus("7", "NODE_FAIL"), "ended: its node failed"),
        (JobStatus("7", "FAILED", exit_code="2:0"), "failed, exit code 2"),
    ],
)
def test_the_card_says_in_words_what_happened_to_the_job(job, text):
    assert state_text(job) == text


# --- the cards ------------------------------------------------------------------------------


async def test_a_held_and_a_delayed_session_say_why_they_wait(
    call, fake_hub, slurm_cluster, submitted
):
    held, later = unique_name(), unique_name()
    held_job = submitted(held, "--hold")
    later_job = submitted(later, "--begin=now+1hour")
    fake_hub.servers = {held: server(held, "test"), later: server(later, "test")}

    found = await cards(call)

    assert found[held]["cluster"] == "test" and found[held]["scheduler"] == "ok"
    assert found[held]["job"] == {
        "id": held_job,
        "state": "PENDING",
        "state_text": "queued",
        "partition": "debug",
        "node": None,
        "time_left": None,
        "time_left_seconds": None,
        "queue_position": None,  # held: no place in the queue
        "expected_start": None,  # Slurm: N/A, the page says "not estimated yet"
        "reason": "JobHeldUser",
        "reason_text": "held by you",
        "started": None,
    }
    assert (found[held]["state"], found[held]["message"]) == ("starting", "Queued")
    job = found[later]["job"]
    assert (job["id"], job["reason_text"]) == (later_job, "waiting for the start time it was given")
    # squeue --start's estimate: the begin time, an hour from now, with the PUN's UTC offset
    expected = time.mktime(time.strptime(job["expected_start"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert 3500 < expected - time.time() < 3700
    assert re.search(r"[+-]\d\d:\d\d$", job["expected_start"])


async def test_a_running_session_shows_node_and_time_left(call, fake_hub, slurm_cluster, submitted):
    name, stopped = unique_name(), unique_name()
    job_id = submitted(name)
    deadline = time.monotonic() + 45
    while squeue_state(job_id) != "RUNNING":
        assert time.monotonic() < deadline, f"job {job_id} did not start: {squeue_state(job_id)}"
        await asyncio.sleep(0.5)
    stopped_job = submitted(stopped, "--hold")
    subprocess.run(["scancel", stopped_job], check=True)
    starting = unique_name()
    starting_job = submitted(starting, "--dependency=afterok:" + job_id, "--kill-on-invalid-dep=no")
    fake_hub.servers = {
        name: server(name, "test", ready=True, pending=None),
        # the job waits for another: still "Queued" (the job runs: "Starting: ...")
        starting: server(starting, "test"),
        # stopped by the hub: JupyterHub forgets its start time; its job is still listed
        stopped: server(stopped, "test", pending=None, stopped=True, started=None),
    }

    found = await cards(call)

    job = found[name]["job"]
    assert (job["id"], job["state"], job["state_text"]) == (job_id, "RUNNING", "running")
    assert job["node"] == "vm" and job["queue_position"] is None
    assert job["time_left"] in ("4 min", "5 min") and 200 < job["time_left_seconds"] <= 300
    assert job["expected_start"] is None and job["reason"] is None
    assert found[name]["started"] == "2025-01-01T10:00:00.000000Z"  # the hub's start time
    assert job["started"] is not None
    waiting = found[starting]
    assert (waiting["message"], waiting["job"]["id"]) == ("Queued", starting_job)
    assert waiting["job"]["reason_text"] == "waiting for another job to finish"
    assert waiting["job"]["queue_position"] is None
    assert (found[name]["state"], found[name]["message"]) == ("running", "Ready")
    ended = found[stopped]
    assert (ended["state"], ended["job"]["state_text"]) == ("stopped", "cancelled")
    assert ended["job"]["started"] is None and ended["started"] is None  # it never ran


async def test_every_card_and_tab_share_one_squeue_per_interval(
    call, fake_hub, slurm_cluster, jp_serverapp
):
    names = [unique_name() for _ in range(5)]
    fake_hub.servers = {n: server(n, "test") for n in names}

    await asyncio.gather(*(cards(call) for _ in range(4)))  # four tabs at once
    found = await cards(call)  # and one more within the interval

    assert all(found[n]["scheduler"] == "ok" and found[n]["job"] is None for n in names)
    caches = sessions_app(jp_serverapp)._job_caches
    assert [cache.calls for cache in caches.values()] == [1]


async def test_a_stop_or_delete_makes_the_next_cards_ask_squeue_again(
    call, fake_hub, slurm_cluster, jp_serverapp
):
    one, two = unique_name(), unique_name()
    fake_hub.servers = {n: server(n, "test", ready=True, pending=None) for n in (one, two)}
    await cards(call)
    await cards(call)
    cache = next(iter(sessions_app(jp_serverapp)._job_caches.values()))
    assert cache.calls == 1

    code, _, _ = await call(f"api/ondemand/sessions/{one}/stop", "POST")
    assert code == 200
    await cards(call)
    assert cache.calls == 2  # the card shows the cancelled job now, not up to 5 s later

    code, _, _ = await call(f"api/ondemand/sessions/{two}", "DELETE")
    assert code == 200
    await cards(call)
    await cards(call)
    assert cache.calls == 3


async def test_an_unreachable_scheduler_is_said_never_ended(
    call, fake_hub, clusters_d, tmp_path, jp_serverapp
):
    dead_controller_cluster(tmp_path, clusters_d, "down")
    name = unique_name()
    fake_hub.servers = {name: server(name, "down", ready=True, pending=None)}

    card = (await cards(call))[name]

    assert card["scheduler"] == "unreachable" and card["job"] is None
    assert (card["state"], card["message"]) == ("running", "Ready")  # the hub's word stands
    cache = next(iter(sessions_app(jp_serverapp)._job_caches.values()))
    assert "Unable to contact slurm controller" in cache.error


async def test_local_cluster_sessions_ask_no_scheduler(call, fake_hub, jp_serverapp):
    name = unique_name()
    fake_hub.servers = {name: server(name)}

    card = (await cards(call))[name]

    assert (card["cluster"], card["scheduler"], card["job"]) == ("local", None, None)
    assert sessions_app(jp_serverapp)._job_caches == {}


async def test_the_sessions_page_loads_its_styles_and_the_log_modal(call):
    code, html, _ = await call("sessions/")
    assert code == 200
    assert "sessions.css" in html and 'id="session-log"' in html


# --- output.log -----------------------------------------------------------------------------


def session_dir(home: Path, name: str) -> Path:
    directory = home / "ondemand" / "sessions" / name
    directory.mkdir(parents=True, exist_ok=True)
    return directory


async def test_the_log_is_its_last_200_lines(call, fake_hub, home):
    fake_hub.servers = {"jupyter-1": server("jupyter-1")}
    lines = [f"line {i}: {'é' * (i % 3)}" for i in range(1, 1001)]
    (session_dir(home, "jupyter-1") / "output.log").write_text("\n".join(lines) + "\n")

    code, body, headers = await call("api/ondemand/sessions/jupyter-1/log")

    assert code == 200
    assert body["text"].split("\n") == lines[-200:]
    assert (body["exists"], body["truncated"], body["name"]) == (True, True, "jupyter-1")
    assert body["size"] == len(("\n".join(lines) + "\n").encode())
    assert body["modified"].endswith("+00:00")
    assert headers["Cache-Control"] == "no-store"


async def test_a_short_log_is_whole_and_a_huge_line_is_bounded(call, fake_hub, home):
    fake_hub.servers = {"jupyter-1": server("jupyter-1"), "jupyter-2": server("jupyter-2")}
    (session_dir(home, "jupyter-1") / "output.log").write_bytes(b"starting\nbad \xff byte\n")
    huge = b"x" * (3 * 1024 * 1024) + b"\nlast line\n"
    (session_dir(home, "jupyter-2") / "output.log").write_bytes(huge)

    _, short, _ = await call("api/ondemand/sessions/jupyter-1/log")
    _, long, _ = await call("api/ondemand/sessions/jupyter-2/log")

    assert short["text"] == "starting\nbad \ufffd byte" and short["truncated"] is False
    assert long["text"] == "last line" and long["truncated"] is True  # its middle not sent


async def test_log_of_a_queued_session_and_of_unknown_ones(call, fake_hub, home):
    fake_hub.servers = {"jupyter-1": server("jupyter-1")}
    session_dir(home, "jupyter-9")  # a folder, but no such session in the hub
    (session_dir(home, "jupyter-9") / "output.log").write_text("old\n")

    code, body, _ = await call("api/ondemand/sessions/jupyter-1/log")
    assert (code, body["exists"], body["text"]) == (200, False, "")

    code, body, _ = await call("api/ondemand/sessions/jupyter-9/log")
    assert (code, body["status"]) == (404, "error")
    for bad in ("Jupyter-1", "..", "jupyter-1%2F..%2F..", "a" * 31):
        code, _, _ = await call(f"api/ondemand/sessions/{bad}/log")
        assert code == 404, bad


async def test_log_never_follows_a_symlink_or_blocks_on_a_fifo(call, fake_hub, home, tmp_path):
    fake_hub.servers = {"jupyter-1": server("jupyter-1"), "jupyter-2": server("jupyter-2")}
    (tmp_path / "elsewhere").write_text("not the log\n")
    (session_dir(home, "jupyter-1") / "output.log").symlink_to(tmp_path / "elsewhere")
    os.mkfifo(session_dir(home, "jupyter-2") / "output.log")

    for name in ("jupyter-1", "jupyter-2"):
        code, body, _ = await call(f"api/ondemand/sessions/{name}/log")
        assert (code, body["exists"]) == (200, False)


# --- thumbnail.png --------------------------------------------------------------------------


def png(width: int = 4, height: int = 3) -> bytes:
    """A real (tiny, grey) PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def test_a_thumbnail_is_on_the_card_and_served_as_png(call, fake_hub, home, jp_base_url):
    fake_hub.servers = {"desktop-1": server("desktop-1"), "jupyter-1": server("jupyter-1")}
    image = png()
    (session_dir(home, "desktop-1") / "thumbnail.png").write_bytes(image)

    found = await cards(call)
    url = found["desktop-1"]["thumbnail_url"]
    assert url.startswith(f"{jp_base_url}api/ondemand/sessions/desktop-1/thumbnail?v=")
    assert found["jupyter-1"]["thumbnail_url"] is None

    code, body, headers = await call(url[len(jp_base_url) :])
    assert (code, body) == (200, image)
    assert headers["Content-Type"] == "image/png"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Content-Type-Options"] == "nosniff"

    code, body, _ = await call(url[len(jp_base_url) :], headers={"If-None-Match": headers["ETag"]})
    assert (code, body) == (304, "")

    # the job writes a new one: a new version on the card, a new ETag
    time.sleep(0.01)
    (session_dir(home, "desktop-1") / "thumbnail.png").write_bytes(png(8, 5))
    new_url = (await cards(call))["desktop-1"]["thumbnail_url"]
    assert new_url != url
    code, _, new_headers = await call(new_url[len(jp_base_url) :])
    assert code == 200 and new_headers["ETag"] != headers["ETag"]


async def test_no_thumbnail_is_404_and_only_pngs_are_served(call, fake_hub, home, tmp_path):
    fake_hub.servers = {"desktop-1": server("desktop-1")}
    code, body, _ = await call("api/ondemand/sessions/desktop-1/thumbnail")
    assert (code, body["status"]) == (404, "error")

    (session_dir(home, "desktop-1") / "thumbnail.png").write_text("<svg onload=alert(1)>")
    code, _, _ = await call("api/ondemand/sessions/desktop-1/thumbnail")
    assert code == 404

    (session_dir(home, "desktop-1") / "thumbnail.png").unlink()
    (tmp_path / "real.png").write_bytes(png())
    (session_dir(home, "desktop-1") / "thumbnail.png").symlink_to(tmp_path / "real.png")
    code, _, _ = await call("api/ondemand/sessions/desktop-1/thumbnail")
    assert code == 404
    assert (await cards(call))["desktop-1"]["thumbnail_url"] is None


# --- the form per cluster -------------------------------------------------------------------


def field_html(html: str, name: str) -> str:
    """The markup of one form field (from its label to its error slot)."""
    return html.split(f'for="field-{name}"')[1].split("data-error-for")[0]


async def test_account_stays_a_text_field_without_accounting(call, slurm_cluster):
    # the real sacctmgr: "You are not running a supported accounting_storage plugin", exit 1
    code, html, _ = await call("apps/jupyter/new")

    assert code == 200
    account = field_html(html, "bc_account")
    assert 'name="bc_account" data-widget="text_field"' in account
    assert "The Slurm account charged; empty for your default account." in account
    assert 'name="bc_queue" data-widget="select"' in html  # a Slurm cluster: all fields
    assert 'name="bc_num_gpus"' in html and 'id="local-cluster-note"' not in html


@pytest.fixture
def sacctmgr_with_accounts(tmp_path, clusters_d) -> Path:
    """A Slurm cluster whose bin directory has the real sinfo and squeue and, instead of
    sacctmgr (no slurmdbd here), a script printing a sample of its output
    (tests/unit/data/slurm/sacctmgr_accounts.txt) and recording its arguments."""
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir()
    for command in ("sinfo", "squeue", "sbatch"):
        (bin_dir / command).symlink_to(shutil.which(command))
    args = tmp_path / "sacctmgr-args"
    script = bin_dir / "sacctmgr"
    script.write_text(
        f'#!/bin/sh\necho "$*" >> {args}\ncat {SLURM_DATA / "sacctmgr_accounts.txt"}\n'
    )
    script.chmod(0o755)
    (clusters_d / "test.yml").write_text(SLURM_CLUSTER + f"    bin: {bin_dir}\n")
    return args


async def test_accounts_are_offered_as_a_select_when_accounting_exists(
    call, fake_hub, sacctmgr_with_accounts
):
    code, html, _ = await call("apps/jupyter/new")

    assert code == 200
    calls = [f"-nP show assoc user={getpass.getuser()} format=account"]
    assert sacctmgr_with_accounts.read_text().splitlines() == calls
    account = field_html(html, "bc_account")
    assert 'name="bc_account" data-widget="select"' in account
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', account)
    assert options == [
        ("", "Your default account"),
        ("chem-lab", "chem-lab"),
        ("phys-2024", "phys-2024"),
        ("proj_x.y", "proj_x.y"),
    ]
    # one sacctmgr per accounts_interval, not per form view
    await call("apps/jupyter/new")
    assert sacctmgr_with_accounts.read_text().splitlines() == calls

    # the launch is validated as before: the account goes to the hub (sbatch checks it)
    code, body, _ = await call(
        "api/ondemand/sessions", "POST", {"app": "jupyter", "bc_account": "chem-lab"}
    )
    assert code == 201, body
    assert fake_hub.servers[body["name"]]["user_options"]["bc_account"] == "chem-lab"
    code, body, _ = await call(
        "api/ondemand/sessions", "POST", {"app": "jupyter", "bc_account": "x;rm -rf /"}
    )
    assert (code, body["field"]) == (400, "bc_account")


async def test_the_form_follows_the_chosen_cluster(call, fake_hub, clusters_d, slurm_cluster):
    (clusters_d / "laptop.yml").write_text(LOCAL_CLUSTER)  # first: the default

    _, local_form, _ = await call("apps/jupyter/new")
    _, slurm_form, _ = await call("apps/jupyter/new?cluster=test")
    _, unknown, _ = await call("apps/jupyter/new?cluster=nope")

    for field in ("bc_queue", "bc_account", "bc_num_gpus", "bc_num_nodes"):
        assert f'name="{field}"' not in local_form
        assert f'name="{field}"' in slurm_form
    assert 'id="local-cluster-note"' in local_form and 'id="local-cluster-note"' not in slurm_form
    assert '<option value="test" selected>Test Slurm</option>' in slurm_form
    assert '<option value="laptop" selected>Portal host</option>' in unknown

    # what the local form sends (no partition, account or GPUs) is a valid launch
    form = {"app": "jupyter", "cluster": "laptop", "bc_num_hours": "2", "bc_num_slots": "1"}
    code, body, _ = await call("api/ondemand/sessions", "POST", form)
    assert code == 201, body
    assert fake_hub.servers[body["name"]]["user_options"] == form


async def test_an_ended_session_squeue_forgot_shows_how_it_ended_from_sacct(
    call, fake_hub, tmp_path, clusters_d
):
    """squeue forgets a job 300 s after it ends; sacct (Slurm's accounting) still knows how
    it ended. There is no slurmdbd here, so a FAKE sacct (a script printing the line sacct
    prints, in the format of tests/unit/data/slurm/sacct_jobs.txt) stands in for it; sinfo and
    squeue are the real ones."""
    name = unique_name()
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir()
    for command in ("sinfo", "squeue"):
        (bin_dir / command).symlink_to(shutil.which(command))
    args = tmp_path / "sacct-args"
    line = (
        f"77|FAILED|2:0|2026-11-22T23:46:50|2026-11-22T23:46:51|00:00:01|vm|ondemand-jupyter-{name}"
    )
    (bin_dir / "sacct").write_text(f'#!/bin/sh\necho "$*" >> {args}\necho "{line}"\n')
    (bin_dir / "sacct").chmod(0o755)
    (clusters_d / "test.yml").write_text(SLURM_CLUSTER + f"    bin: {bin_dir}\n")
    fake_hub.servers = {name: server(name, "test", pending=None, stopped=True)}

    card = (await cards(call))[name]
    await cards(call)  # a second refresh reuses the answer

    assert card["state"] == "stopped" and card["scheduler"] == "ok"
    assert card["job"]["id"] == "77" and card["job"]["node"] == "vm"
    assert card["job"]["state_text"] == "failed, exit code 2"
    assert args.read_text().splitlines() == [
        f"-n -P -X -u {getpass.getuser()} -S now-7days "
        "-o JobID,State,ExitCode,Start,End,Elapsed,NodeList,JobName"
    ]


async def test_without_accounting_an_ended_session_simply_has_no_job(call, fake_hub, slurm_cluster):
    # the real sacct: "Slurm accounting storage is disabled" (no slurmdbd): no job, no error
    name = unique_name()
    fake_hub.servers = {name: server(name, "test", pending=None, stopped=True)}
    card = (await cards(call))[name]
    assert (card["state"], card["scheduler"], card["job"]) == ("stopped", "ok", None)
