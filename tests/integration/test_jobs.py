"""Active jobs and the job composer through a real hub, real PUNs and the real single-node
Slurm, with two real accounts: odt-jack sees and cancels his own jobs, never odt-jill's (the
portal refuses, and so would Slurm); a composer job from a site template runs as odt-jack and
writes its output into its folder.

The PUNs read the test's clusters.d and template directory from ``jupyter_ondemand_jobs_config.py``
in the site's jupyter config directory (the jobs extension's own config file, which only these
tests write; it applies to the test accounts only and is removed afterwards). PUNs ignore the
accounts' own ``~/.jupyter``."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

import pytest
import requests

from harness import (
    SLURM_CLUSTER,
    SLURM_SH,
    STAGE,
    ensure_account,
    run,
    running_hub,
    wait_for,
)

JACK, JILL = "odt-jack", "odt-jill"
PASSWORDS = {JACK: "Jack-pw-10!", JILL: "Jill-pw-11!"}
SITE = Path(f"/var/tmp/ondemand-hub-test-{os.getpid()}-jobs-site")
JOBS_CONFIG = Path("/etc/ondemand-hub/jupyter/jupyter_ondemand_jobs_config.py")


def clean_up(name: str) -> None:
    run(STAGE, "pun", "stop", "--user", name, check=False)
    run("scancel", "-u", name, check=False)
    shutil.rmtree(Path(pwd.getpwnam(name).pw_dir) / "ondemand" / "jobs", ignore_errors=True)


@pytest.fixture(scope="module")
def hub():
    if run("bash", SLURM_SH, "status", check=False).returncode != 0:
        pytest.fail("Slurm is not running (make test starts it)")
    (SITE / "clusters.d").mkdir(parents=True, exist_ok=True)
    (SITE / "clusters.d" / "hpc.yml").write_text(SLURM_CLUSTER)
    template = SITE / "templates" / "whoami"
    template.mkdir(parents=True, exist_ok=True)
    (template / "manifest.yml").write_text("title: Who am I\ndescription: Says who runs it\n")
    (template / "job.sh").write_text(
        '#!/bin/bash\n#SBATCH -t 2\necho "job $SLURM_JOB_ID runs as $(id -un) in $PWD"\n'
    )
    SITE.chmod(0o755)
    JOBS_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    assert not JOBS_CONFIG.exists(), f"would overwrite {JOBS_CONFIG}"
    JOBS_CONFIG.write_text(
        "# written by tests/integration/test_jobs.py, removed when it ends\n"
        "import getpass\n"
        f"if getpass.getuser() in {tuple(PASSWORDS)!r}:\n"
        f"    c.JobsExtensionApp.clusters_dir = {str(SITE / 'clusters.d')!r}\n"
        f"    c.JobsExtensionApp.template_dirs = [{str(SITE / 'templates')!r}]\n"
    )
    env = {"ONDEMAND_HUB_CLUSTERS_DIR": str(SITE / "clusters.d")}
    try:
        for name, password in PASSWORDS.items():
            ensure_account(name, password)
            clean_up(name)
        with running_hub("jobs", env=env) as h:
            yield h
    finally:
        for name in PASSWORDS:
            clean_up(name)
        JOBS_CONFIG.unlink(missing_ok=True)
        shutil.rmtree(SITE, ignore_errors=True)


class Portal:
    """A signed-in user's calls to their PUN's JSON API (cookie + XSRF header, as the page)."""

    def __init__(self, hub, name: str):
        self.name = name
        self.base = f"{hub.url}/user/{name}"
        self.session, reply = hub.login(name, PASSWORDS[name])
        assert reply.status_code == 302, reply.text
        hub.open_dashboard(self.session, name)
        self.session.get(f"{self.base}/jobs/", timeout=30)  # sets the PUN's _xsrf cookie

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        xsrf = next(
            c.value for c in self.session.cookies if c.name == "_xsrf" and self.name in c.path
        )
        r = self.session.request(
            method,
            f"{self.base}/api/ondemand/{path}",
            json=body,
            headers={"X-XSRFToken": xsrf},
            timeout=60,
        )
        return r.status_code, r.json()


def submit_as(name: str) -> str:
    """A held job of ``name`` (it never takes a CPU), submitted by the account itself."""
    argv = ["runuser", "-u", name, "--", "sbatch", "--parsable", "--hold", "-t", "5"]
    out = run(*argv, "-o", "/dev/null", "--job-name=odt-held", "--wrap", "sleep 60", cwd="/tmp")
    return out.stdout.strip().split(";")[0]


def state(job_id: str) -> str:
    return run("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T", check=False).stdout.strip()


def test_jack_sees_and_cancels_his_job_never_jills(hub):
    jack, jill = Portal(hub, JACK), Portal(hub, JILL)
    mine, hers = submit_as(JACK), submit_as(JILL)

    code, body = jack.call("GET", "jobs")
    assert code == 200, body
    ids = [r["id"] for r in body["jobs"]]
    assert mine in ids and hers not in ids, body  # only his own (show_all_jobs is off)
    row = next(r for r in body["jobs"] if r["id"] == mine)
    assert (row["user"], row["state_text"], row["cancellable"]) == (JACK, "queued", True)
    assert "accounting storage is disabled" in body["history_notes"][0]["note"]

    code, body = jack.call("POST", f"jobs/hpc/{hers}/cancel")
    assert code == 403, body
    assert body["message"] == f"Job {hers} belongs to {JILL}: you can cancel only your own jobs"
    assert state(hers) == "PENDING"
    # and Slurm itself refuses jack's scancel of jill's job, should the portal's check be gone
    refused = run("runuser", "-u", JACK, "--", "scancel", hers, check=False)
    assert refused.returncode != 0 and "denied" in refused.stderr.lower()
    assert state(hers) == "PENDING"

    code, body = jack.call("POST", f"jobs/hpc/{mine}/cancel")
    assert code == 200, body
    assert state(mine) == "CANCELLED"
    code, body = jill.call("GET", "jobs")
    assert [r["id"] for r in body["jobs"] if r["active"]] == [hers]
    code, body = jill.call("POST", f"jobs/hpc/{hers}/cancel")
    assert code == 200 and state(hers) == "CANCELLED"


def test_a_composer_job_from_a_site_template_runs_as_jack_in_its_folder(hub):
    jack = Portal(hub, JACK)
    entry = pwd.getpwnam(JACK)

    code, body = jack.call("POST", "composer/jobs", {"from": "template", "template": "whoami"})
    assert code == 201, body
    job = body["job"]
    folder = Path(entry.pw_dir) / "ondemand" / "jobs" / job["number"]
    assert job["folder"] == str(folder) and job["title"] == "Who am I"
    assert (folder / "job.sh").stat().st_uid == entry.pw_uid

    code, body = jack.call("PATCH", f"composer/jobs/{job['number']}", {"partition": "debug"})
    assert code == 200, body
    code, body = jack.call("POST", f"composer/jobs/{job['number']}/submit")
    assert code == 200, body
    job_id = body["job"]["last_job"]["id"]

    output = folder / f"slurm-{job_id}.out"
    wait_for(lambda: output.exists() and "runs as" in output.read_text(), 60, "the job's output")
    assert output.read_text() == f"job {job_id} runs as {JACK} in {folder}\n"
    assert output.stat().st_uid == entry.pw_uid

    code, body = jack.call("GET", "jobs")
    row = next(r for r in body["jobs"] if r["id"] == job_id)
    assert row["composer_job"] == job["number"] and row["user"] == JACK

    def ended():
        return not jack.call("GET", f"composer/jobs/{job['number']}")[1]["job"]["last_job"][
            "active"
        ]

    wait_for(ended, 30, "the job's end")
    code, body = jack.call("GET", f"composer/jobs/{job['number']}")
    assert body["job"]["last_job"]["output_url"].endswith(f"/files/edit{output}")
    code, _ = jack.call("DELETE", f"composer/jobs/{job['number']}")
    assert code == 200 and not folder.exists()


def test_jobs_pages_answer_through_the_proxy(hub):
    jack = Portal(hub, JACK)
    r = jack.session.get(f"{jack.base}/jobs/", timeout=30)
    assert r.status_code == 200 and "Active jobs" in r.text and "bootstrap" in r.text
    r = jack.session.get(f"{jack.base}/jobs/composer/", timeout=30)
    assert r.status_code == 200 and "Who am I" in r.text and 'value="hpc"' in r.text
    r = requests.get(f"{jack.base}/jobs/", timeout=30, allow_redirects=False)
    assert r.status_code in (302, 303)  # not signed in: to the login
