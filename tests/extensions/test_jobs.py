"""Active jobs and the job composer against the real single-node Slurm (the extension runs
squeue, sbatch, scancel itself, as in a PUN; here as the test process's account). Only sacct
with accounting is a stand-in (no slurmdbd here): a named fake script printing sacct's line."""

from __future__ import annotations

import asyncio
import getpass
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SLURM_CLUSTER, dead_controller_cluster
from jupyter_server.utils import url_path_join
from traitlets.config import Config

from ondemand_jobs.paths import BUNDLED_JOB_TEMPLATES_DIR

REPO = Path(__file__).resolve().parents[2]

ME = getpass.getuser()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "home"
    directory.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(directory))
    return directory


@pytest.fixture
def clusters_d(tmp_path) -> Path:
    directory = tmp_path / "clusters.d"
    directory.mkdir()
    (directory / "test.yml").write_text(SLURM_CLUSTER)
    return directory


@pytest.fixture
def site_templates(tmp_path) -> Path:
    """The site's template directory, with a quick job and a script sbatch refuses."""
    base = tmp_path / "site-templates"
    quick = base / "quick"
    quick.mkdir(parents=True)
    (quick / "manifest.yml").write_text("title: Quick job\ndescription: Says hi\nscript: run.sh\n")
    (quick / "run.sh").write_text('#!/bin/bash\necho "hi from $SLURM_JOB_ID in $PWD"\n')
    (quick / "input.txt").write_text("data\n")
    broken = base / "noshebang"
    broken.mkdir()
    (broken / "manifest.yml").write_text("title: No interpreter line\n")
    (broken / "job.sh").write_text("echo this is not a batch script\n")
    held = base / "held"
    held.mkdir()
    (held / "manifest.yml").write_text("title: Held\n")
    (held / "job.sh").write_text("#!/bin/bash\n#SBATCH --hold\n#SBATCH -t 5\nsleep 60\n")
    bad = base / "badmanifest"
    bad.mkdir()
    (bad / "manifest.yml").write_text("title: Bad\ncolour: red\n")
    (bad / "job.sh").write_text("#!/bin/bash\n")
    return base


@pytest.fixture
def jobs_settings() -> dict:
    return {}


@pytest.fixture
def jp_server_config(dashboard_config, home, clusters_d, site_templates, jobs_settings):
    assert shutil.which("squeue"), "squeue missing: run scripts/slurm.sh start"
    config = dashboard_config
    config.ServerApp.jpserver_extensions["ondemand_jobs"] = True
    config.JobsExtensionApp = Config(
        {
            "clusters_dir": str(clusters_d),
            "template_dirs": [BUNDLED_JOB_TEMPLATES_DIR, str(site_templates)],
            **jobs_settings,
        }
    )
    return config


@pytest.fixture
def call(http_server_client, jp_base_url, jp_auth_header):
    """``(code, parsed JSON or text)`` of a request; errors are returned."""

    async def call(path, method="GET", body=None):
        response = await http_server_client.fetch(
            url_path_join(jp_base_url, path),
            method=method,
            body=None if body is None and method in ("GET", "DELETE") else json.dumps(body or {}),
            headers={**jp_auth_header, "Content-Type": "application/json"},
            raise_error=False,
            follow_redirects=False,
            allow_nonstandard_methods=True,
            request_timeout=40,
        )
        text = response.body.decode()
        try:
            return response.code, json.loads(text)
        except ValueError:
            return response.code, text

    return call


@pytest.fixture
def submitted(slurm_jobs):
    """Real held Slurm jobs (optionally as another user); all cancelled afterwards."""
    return lambda *args: slurm_jobs("--hold", *args, command="sleep 60")


def squeue_state(job_id: str) -> str:
    argv = ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"]
    return subprocess.run(argv, capture_output=True, text=True).stdout.strip()


def jobs_app(jp_serverapp):
    return jp_serverapp.web_app.settings["ondemand_jobs"]


async def new_job(call, template: str) -> dict:
    code, body = await call(
        "api/ondemand/composer/jobs", "POST", {"from": "template", "template": template}
    )
    assert code == 201, body
    return body["job"]


@pytest.fixture
def cancel_composer_jobs(home):
    """Cancel every job the composer submitted in this test."""
    yield
    ids = []
    for meta in (home / "ondemand" / "jobs").glob("*/.ondemand-job.json"):
        ids += [s["id"] for s in json.loads(meta.read_text())["submissions"]]
    if ids:
        subprocess.run(["scancel", *ids], check=False)


# --- pages ----------------------------------------------------------------------------------


async def test_the_pages_render_in_the_portal_layout(call):
    code, html = await call("jobs/")
    assert code == 200
    assert "<h1" in html and "Active jobs" in html and "jobs.js" in html and "jobs.css" in html
    assert 'aria-current="page"' in html and "Example HPC Portal" in html  # base.html, nav
    assert 'id="jobs-scope-all"' not in html  # all jobs are off by default

    code, html = await call("jobs/composer/")
    assert code == 200
    assert "composer.js" in html and "Hello world" in html and "Quick job" in html
    assert "Bad" not in html  # a manifest with an unknown key is left out (and logged)
    assert '<option value="test">Test Slurm</option>' in html

    code, _ = await call("jobs")
    assert code == 302


# --- Active jobs ----------------------------------------------------------------------------


async def test_active_jobs_lists_the_users_real_jobs_and_cancels_one(call, submitted):
    job_id = submitted("--job-name=odt jobs | test")
    code, body = await call("api/ondemand/jobs")
    assert code == 200, body
    assert body["clusters"] == [
        {
            "id": "test",
            "title": "Test Slurm",
            "scheduler": "ok",
            "message": None,
            "accounting": False,
        }
    ]
    row = next(r for r in body["jobs"] if r["id"] == job_id)
    assert row["user"] == ME and row["mine"] and row["cancellable"]
    assert (row["name"], row["partition"], row["state"]) == ("odt jobs | test", "debug", "PENDING")
    assert (row["state_text"], row["reason_text"]) == ("queued", "held by you")
    assert (row["time_limit"], row["nodes"], row["cluster_title"]) == ("5:00", "1", "Test Slurm")
    assert all(r["user"] == ME for r in body["jobs"])
    # no slurmdbd here: the real sacct fails, and the page says why completed jobs are missing
    assert body["history"] == []
    assert "accounting storage is disabled" in body["history_notes"][0]["note"]

    code, body = await call(f"api/ondemand/jobs/test/{job_id}")
    assert code == 200 and body["fields"]["JobId"] == job_id
    assert body["fields"]["UserId"].startswith(ME + "(")

    code, body = await call(f"api/ondemand/jobs/test/{job_id}/cancel", "POST")
    assert code == 200, body
    assert squeue_state(job_id) == "CANCELLED"
    code, body = await call("api/ondemand/jobs")  # the cache was dropped: no stale row
    row = next(r for r in body["jobs"] if r["id"] == job_id)
    assert row["state"] == "CANCELLED" and not row["cancellable"]

    code, body = await call(f"api/ondemand/jobs/test/{job_id}/cancel", "POST")
    assert code == 409 and body["message"] == f"Job {job_id} has already ended (cancelled)"


async def test_another_users_job_is_never_cancelled(call, submitted):
    # root may submit for another account; the PUN here runs as root, which Slurm would let
    # cancel anything: the portal's own check must refuse
    job_id = submitted("--uid=nobody")
    code, body = await call(f"api/ondemand/jobs/test/{job_id}/cancel", "POST")
    assert code == 403
    assert body["message"] == f"Job {job_id} belongs to nobody: you can cancel only your own jobs"
    assert squeue_state(job_id) == "PENDING"
    code, body = await call(f"api/ondemand/jobs/test/{job_id}")
    assert (code, body["message"]) == (403, f"Job {job_id} is not yours")
    code, body = await call("api/ondemand/jobs?scope=all")  # not allowed: still mine only
    assert body["scope"] == "mine" and job_id not in [r["id"] for r in body["jobs"]]


@pytest.mark.parametrize("jobs_settings", [{"show_all_jobs": True}])
async def test_all_jobs_when_the_admin_allows_it(call, submitted):
    job_id = submitted("--uid=nobody")
    code, html = await call("jobs/")
    assert 'id="jobs-scope-all"' in html
    code, body = await call("api/ondemand/jobs?scope=all")
    assert body["scope"] == "all" and body["all_allowed"]
    row = next(r for r in body["jobs"] if r["id"] == job_id)
    assert row["user"] == "nobody" and not row["mine"] and not row["cancellable"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("api/ondemand/jobs/test/999999999/cancel", "No job 999999999 on Test Slurm"),
        ("api/ondemand/jobs/test/12abc/cancel", "Not a Slurm job id: '12abc'"),
        ("api/ondemand/jobs/mars/12/cancel", "No Slurm cluster 'mars'"),
    ],
)
async def test_unknown_job_ids_and_clusters_are_said(call, path, message):
    code, body = await call(path, "POST")
    assert (code, body["message"]) == (404, message)
    code, body = await call(path.removesuffix("/cancel"))
    assert (code, body["message"]) == (404, message)


async def test_completed_jobs_from_sacct_where_accounting_exists(call, tmp_path, clusters_d):
    """No slurmdbd here: a FAKE sacct (a named script printing a line in the format of
    tests/unit/data/slurm/sacct_jobs.txt) stands in; squeue and sinfo are the real ones."""
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir()
    for command in ("sinfo", "squeue", "scontrol", "scancel", "sbatch"):
        (bin_dir / command).symlink_to(shutil.which(command))
    args = tmp_path / "sacct-args"
    line = "77|FAILED|2:0|2026-11-22T23:46:50|2026-11-22T23:46:51|00:00:01|vm|my analysis"
    (bin_dir / "sacct").write_text(f'#!/bin/sh\necho "$*" >> {args}\necho "{line}"\n')
    (bin_dir / "sacct").chmod(0o755)
    (clusters_d / "test.yml").write_text(SLURM_CLUSTER + f"    bin: {bin_dir}\n")

    code, body = await call("api/ondemand/jobs")
    await call("api/ondemand/jobs")  # reused for history_interval

    assert code == 200 and body["history_notes"] == [] and body["clusters"][0]["accounting"]
    assert body["history"] == [
        {
            "cluster": "test",
            "cluster_title": "Test Slurm",
            "id": "77",
            "name": "my analysis",
            "state": "FAILED",
            "state_text": "failed, exit code 2",
            "exit_code": "2:0",
            "start": "2026-11-22T23:46:50",
            "end": "2026-11-22T23:46:51",
            "elapsed": "00:00:01",
            "node_list": "vm",
        }
    ]
    assert args.read_text().splitlines() == [
        f"-n -P -X -u {ME} -S now-7days -o JobID,State,ExitCode,Start,End,Elapsed,NodeList,JobName"
    ]


async def test_thousands_of_jobs_answer_at_once_with_one_squeue_for_every_tab(
    call, tmp_path, clusters_d
):
    """A named FAKE squeue (a script printing 5000 jobs in SQUEUE_FORMAT, a second slow, and
    counting its calls) stands in for a busy cluster; the pages share its one answer."""
    bin_dir = tmp_path / "busy-bin"
    bin_dir.mkdir()
    lines = bin_dir / "squeue.txt"
    lines.write_text(
        "".join(
            f"{n}|PENDING|Priority|{ME}|(null)|batch|1|1|1G|1:00:00|0:00|1:00:00|"
            f"2026-11-23T00:00:00|N/A|N/A||n/a|{n}|array {n}\n"
            for n in range(100000, 105000)
        )
    )
    calls = tmp_path / "squeue-calls"
    (bin_dir / "squeue").write_text(f"#!/bin/sh\necho x >> {calls}\nsleep 1\ncat {lines}\n")
    (bin_dir / "squeue").chmod(0o755)
    (bin_dir / "sacct").write_text(
        f"#!/bin/sh\necho s >> {calls}\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n"
    )
    (bin_dir / "sacct").chmod(0o755)
    (clusters_d / "test.yml").write_text(SLURM_CLUSTER + f"    bin: {bin_dir}\n")

    started = time.monotonic()
    replies = await asyncio.gather(*(call("api/ondemand/jobs") for _ in range(5)))
    elapsed = time.monotonic() - started

    assert [code for code, _ in replies] == [200] * 5
    assert len(replies[0][1]["jobs"]) == 5000
    assert replies[0][1]["jobs"][0]["reason_text"] == "other jobs are ahead of it in the queue"
    assert calls.read_text().split() == ["x", "s"]  # five tabs, one squeue, one sacct
    assert elapsed < 5, elapsed


def dead_controller(tmp_path: Path, clusters_d: Path) -> None:
    dead_controller_cluster(tmp_path, clusters_d, "test")


async def test_a_scheduler_that_does_not_answer_is_said_and_nothing_is_lost(
    call, tmp_path, clusters_d, home, cancel_composer_jobs
):
    job = await new_job(call, "quick")
    dead_controller(tmp_path, clusters_d)

    code, html = await call("jobs/")
    assert code == 200  # the page never waits for Slurm
    code, body = await call("api/ondemand/jobs")
    assert code == 200
    (cluster,) = body["clusters"]
    assert cluster["scheduler"] == "unreachable" and body["jobs"] == []
    assert "Unable to contact slurm controller" in cluster["message"]

    code, body = await call(f"api/ondemand/composer/jobs/{job['number']}/submit", "POST")
    assert code == 503 and "Unable to contact slurm controller" in body["message"], body
    code, body = await call("api/ondemand/jobs/test/12/cancel", "POST")
    assert code == 503 and body["message"].startswith("The scheduler of Test Slurm does not answer")
    code, body = await call(f"api/ondemand/composer/jobs/{job['number']}")
    assert code == 200 and body["job"]["last_job"] is None and body["job"]["script_exists"]


# --- the composer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "code", "message"),
    [
        ("../../etc", 400, "Not a template name: '../../etc'"),
        ("..", 400, "Not a template name: '..'"),
        ("quick/../held", 400, "Not a template name: 'quick/../held'"),
        ("nope", 404, "No template 'nope'"),
        ("badmanifest", 404, "No template 'badmanifest'"),
        (7, 400, "Not a template name: 7"),
    ],
)
async def test_template_names_are_checked(call, home, template, code, message):
    reply = await call(
        "api/ondemand/composer/jobs", "POST", {"from": "template", "template": template}
    )
    assert reply == (code, {"status": "error", "message": message, "field": "template"})
    assert not (home / "ondemand" / "jobs").exists() or not any(
        (home / "ondemand" / "jobs").iterdir()
    )


async def test_a_template_job_is_submitted_runs_and_writes_its_output_in_its_folder(
    call, home, cancel_composer_jobs
):
    job = await new_job(call, "quick")
    folder = home / "ondemand" / "jobs" / "1"
    assert job["number"] == "1" and job["folder"] == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == [".ondemand-job.json", "input.txt", "run.sh"]
    assert job["script_url"].endswith(f"files/edit{folder}/run.sh")
    assert job["folder_url"].endswith(f"files/fs{folder}/")

    code, body = await call(
        "api/ondemand/composer/jobs/1", "PATCH", {"partition": "debug", "time_limit": "2"}
    )
    assert code == 200 and body["job"]["partition"] == "debug"
    code, body = await call("api/ondemand/composer/jobs/1/submit", "POST")
    assert code == 200, body
    job_id = body["job"]["last_job"]["id"]
    assert body["job"]["last_job"]["cluster"] == "test"

    output = folder / f"slurm-{job_id}.out"
    deadline = time.monotonic() + 40  # within the 60 s test timeout (pytest.ini)
    while not (output.exists() and "hi from" in output.read_text()):
        assert time.monotonic() < deadline, f"no output from job {job_id}: {squeue_state(job_id)}"
        time.sleep(0.5)
    assert output.read_text() == f"hi from {job_id} in {folder}\n"

    code, body = await call("api/ondemand/jobs")
    row = next(r for r in body["jobs"] if r["id"] == job_id)
    assert row["composer_job"] == "1" and row["time_limit"] == "2:00"
    deadline = time.monotonic() + 30
    while True:
        code, body = await call("api/ondemand/composer/jobs/1")
        if not body["job"]["last_job"]["active"]:
            break
        assert time.monotonic() < deadline
        time.sleep(1)
    assert body["job"]["last_job"]["output_url"].endswith(f"files/edit{output}")

    # a new job from this one: its script and input, not its output, and its settings
    code, body = await call("api/ondemand/composer/jobs", "POST", {"from": "job", "job": "1"})
    assert code == 201 and body["job"]["number"] == "2" and body["job"]["partition"] == "debug"
    assert sorted(p.name for p in (folder.parent / "2").iterdir()) == [
        ".ondemand-job.json", "input.txt", "run.sh"
    ]  # fmt: skip

    code, _ = await call("api/ondemand/composer/jobs/1", "DELETE")
    assert code == 200 and not folder.exists()
    code, body = await call("api/ondemand/composer/jobs")
    assert [j["number"] for j in body["jobs"]] == ["2"]


async def test_a_script_sbatch_rejects_shows_sbatchs_message(call, home):
    job = await new_job(call, "noshebang")
    code, body = await call(f"api/ondemand/composer/jobs/{job['number']}/submit", "POST")
    assert code == 400
    assert body["message"].startswith("sbatch: error: This does not look like a batch script.")
    assert "first line must start with #!" in body["message"]
    code, body = await call(f"api/ondemand/composer/jobs/{job['number']}")
    assert body["job"]["last_job"] is None  # nothing recorded, the folder is kept

    await call(f"api/ondemand/composer/jobs/{job['number']}", "PATCH", {"script": "gone.sh"})
    code, body = await call(f"api/ondemand/composer/jobs/{job['number']}/submit", "POST")
    assert (code, body["field"]) == (400, "script") and "gone.sh is missing" in body["message"]


async def test_an_unknown_partition_is_refused_by_slurm_in_its_words(call, home):
    job = await new_job(call, "quick")
    await call(f"api/ondemand/composer/jobs/{job['number']}", "PATCH", {"partition": "nopart"})
    code, body = await call(f"api/ondemand/composer/jobs/{job['number']}/submit", "POST")
    assert code == 400
    assert body["message"] == (
        "sbatch: error: invalid partition specified: nopart "
        "Batch job submission failed: Invalid partition name specified"
    )


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"partition": "--wrap=id"}, "partition"),
        ({"time_limit": "an hour"}, "time_limit"),
        ({"account": "a b"}, "account"),
        ({"script": "../x.sh"}, "script"),
        ({"cluster": "mars"}, "cluster"),
        ({"title": "two\nlines"}, "title"),
        ({"runtime": "1"}, "runtime"),
    ],
)
async def test_settings_are_validated(call, home, settings, field):
    job = await new_job(call, "quick")
    code, body = await call(f"api/ondemand/composer/jobs/{job['number']}", "PATCH", settings)
    assert (code, body["field"]) == (400, field), body


async def test_a_queued_job_cannot_be_deleted_until_stopped(call, home, cancel_composer_jobs):
    job = await new_job(call, "held")
    number = job["number"]
    code, body = await call(f"api/ondemand/composer/jobs/{number}/submit", "POST")
    assert code == 200, body
    job_id = body["job"]["last_job"]["id"]
    assert body["job"]["last_job"]["state"] == "PENDING" and body["job"]["last_job"]["active"]

    code, body = await call(f"api/ondemand/composer/jobs/{number}/submit", "POST")
    assert code == 409 and body["message"] == f"Job {job_id} of this folder is still queued"
    code, body = await call(f"api/ondemand/composer/jobs/{number}", "DELETE")
    assert code == 409 and "stop it before deleting" in body["message"]
    assert (home / "ondemand" / "jobs" / number).is_dir()

    code, body = await call(f"api/ondemand/composer/jobs/{number}/stop", "POST")
    assert code == 200, body
    assert squeue_state(job_id) == "CANCELLED"
    assert body["job"]["last_job"]["state"] == "CANCELLED"
    code, body = await call(f"api/ondemand/composer/jobs/{number}/stop", "POST")
    assert code == 409
    code, _ = await call(f"api/ondemand/composer/jobs/{number}", "DELETE")
    assert code == 200 and not (home / "ondemand" / "jobs" / number).exists()


async def test_a_job_from_a_directory(call, home, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "analysis.sh").write_text("#!/bin/bash\necho hi\n")
    (project / "data.csv").write_text("1,2\n")
    (project / "sub").mkdir()
    (project / "link.sh").symlink_to("/etc/passwd")

    code, body = await call(
        "api/ondemand/composer/jobs", "POST", {"from": "directory", "path": str(project)}
    )
    assert code == 201, body
    assert (body["job"]["script"], body["job"]["title"]) == ("analysis.sh", "project")
    folder = Path(body["job"]["folder"])
    assert sorted(p.name for p in folder.iterdir()) == [
        ".ondemand-job.json",
        "analysis.sh",
        "data.csv",
    ]

    for request, code, message in [
        ({"path": "relative/dir"}, 400, "Give the directory's absolute path"),
        ({"path": str(tmp_path / "none")}, 404, f"No directory {tmp_path / 'none'}"),
        ({"path": str(project), "script": "other.sh"}, 400, f"{project} has no file other.sh"),
        (
            {"path": str(project), "script": "../x"},
            400,
            "Script must be a file name in the job's folder",
        ),
    ]:
        reply = await call("api/ondemand/composer/jobs", "POST", {"from": "directory", **request})
        assert (reply[0], reply[1]["message"]) == (code, message)


async def test_unknown_composer_jobs_and_sources(call, home):
    assert (await call("api/ondemand/composer/jobs/7"))[0] == 404
    code, body = await call("api/ondemand/composer/jobs/..", "DELETE")
    assert code == 404 and body["message"] == "No job '..'"
    code, body = await call("api/ondemand/composer/jobs", "POST", {"from": "job", "job": "../1"})
    assert code == 404
    code, body = await call("api/ondemand/composer/jobs", "POST", {"from": "url"})
    assert code == 400 and body["field"] == "from"
    code, body = await call("api/ondemand/composer/jobs/3/submit", "POST")
    assert code == 404


async def test_partitions_for_the_settings_form(call):
    code, body = await call("api/ondemand/composer/partitions?cluster=test")
    assert code == 200
    # scripts/slurm.sh: debug (default) and batch, then the compute nodes' partition
    assert [(p["name"], p["default"]) for p in body["partitions"]] == [
        ("debug", True),
        ("batch", False),
        ("compute", False),
    ]


def test_every_setting_has_help():
    from ondemand_jobs.app import JobsExtensionApp

    own = {
        name: trait
        for name, trait in JobsExtensionApp.class_own_traits(config=True).items()
        if name not in ("template_paths", "static_paths")
    }
    assert "show_all_jobs" in own and "template_dirs" in own
    assert [name for name, trait in own.items() if len(trait.help or "") < 20] == []
