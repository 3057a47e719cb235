"""Browser test of the Jobs pages, through the real hub, the user's PUN and the real single-node
Slurm: make a job in the composer from a template, set its partition, submit it, watch it in
Active jobs (refreshed without a reload), open its details, cancel it, and open its output in
Files. Screenshots of each page.

The PUN reads the test's clusters.d and templates from ``jupyter_ondemand_jobs_config.py`` in
the site's jupyter config directory (the jobs extension's own config file; for the test account
only, removed afterwards)."""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from harness import SLURM_SH, STAGE, Hub, ensure_account, run, running_hub, sign_in_with_form

USER, PASSWORD = "odt-kate", "Kate-pw-12!"
SITE = Path(f"/var/tmp/ondemand-hub-test-{os.getpid()}-jobs-e2e")
JOBS_CONFIG = Path("/etc/ondemand-hub/jupyter/jupyter_ondemand_jobs_config.py")
CLUSTER = "v2:\n  metadata:\n    title: Test HPC\n  job:\n    adapter: slurm\n"


def clean_up() -> None:
    run(STAGE, "pun", "stop", "--user", USER, check=False)
    run("scancel", "-u", USER, check=False)
    shutil.rmtree(Path(pwd.getpwnam(USER).pw_dir) / "ondemand" / "jobs", ignore_errors=True)


@pytest.fixture(scope="module")
def jobs_hub() -> Iterator[Hub]:
    if run("bash", SLURM_SH, "status", check=False).returncode != 0:
        pytest.fail("Slurm is not running (make test starts it)")
    ensure_account(USER, PASSWORD)
    (SITE / "clusters.d").mkdir(parents=True, exist_ok=True)
    (SITE / "clusters.d" / "hpc.yml").write_text(CLUSTER)
    template = SITE / "templates" / "countdown"
    template.mkdir(parents=True, exist_ok=True)
    (template / "manifest.yml").write_text(
        "title: Countdown\ndescription: Counts down from 60, one line a second\n"
    )
    (template / "job.sh").write_text(
        '#!/bin/bash\n#SBATCH -t 3\necho "countdown on $(hostname)"\n'
        "for i in $(seq 60 -1 1); do echo $i; sleep 1; done\n"
    )
    for path in [SITE, *SITE.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    JOBS_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    assert not JOBS_CONFIG.exists(), f"would overwrite {JOBS_CONFIG}"
    JOBS_CONFIG.write_text(
        "# written by tests/e2e/test_jobs_browser.py, removed when it ends\n"
        "import getpass\n"
        f"if getpass.getuser() == {USER!r}:\n"
        f"    c.JobsExtensionApp.clusters_dir = {str(SITE / 'clusters.d')!r}\n"
        f"    c.JobsExtensionApp.template_dirs = [{str(SITE / 'templates')!r}]\n"
    )
    try:
        clean_up()
        with running_hub(
            "e2e-jobs", env={"ONDEMAND_HUB_CLUSTERS_DIR": str(SITE / "clusters.d")}
        ) as h:
            yield h
    finally:
        clean_up()
        JOBS_CONFIG.unlink(missing_ok=True)
        shutil.rmtree(SITE, ignore_errors=True)


def test_compose_submit_watch_and_cancel_a_job(browser: Browser, jobs_hub: Hub, screenshots: Path):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in_with_form(page, jobs_hub, USER, PASSWORD)

    # --- Active jobs, empty; no accounting here, and the page says so ------------------------
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.get_by_role("heading", name="Active jobs")).to_be_visible()
    expect(page.locator("#jobs-count")).to_contain_text("job")  # loaded (ended jobs of an
    # earlier run may still be listed: Slurm keeps them for MinJobAge, 300 s)
    expect(page.locator(".ondemand-history-note")).to_contain_text("no job accounting")

    # --- the composer: a job from a template --------------------------------------------------
    page.get_by_role("link", name="Job composer").click()
    expect(page.get_by_role("heading", name="Job composer")).to_be_visible()
    expect(page.locator("#composer-jobs")).to_contain_text("No jobs yet")
    page.get_by_role("button", name="New job").click()
    page.get_by_role("button", name="From a template…").click()
    chooser = page.locator("#new-from-template")
    page.wait_for_function(
        "() => getComputedStyle(document.getElementById('new-from-template')).opacity === '1'"
    )
    page.screenshot(path=str(screenshots / "jobs-templates.png"))
    chooser.get_by_role("button", name="Countdown").click()
    expect(chooser).to_be_hidden()
    expect(page.locator("#composer-title")).to_have_text("Countdown")
    folder = Path(pwd.getpwnam(USER).pw_dir) / "ondemand" / "jobs" / "1"
    expect(page.locator("#composer-folder")).to_have_text(str(folder))
    edit = page.locator("#composer-edit")
    assert edit.get_attribute("href") == f"/user/{USER}/files/edit{folder}/job.sh"
    page.get_by_label("Partition").fill("debug")
    page.get_by_label("Time limit").fill("2")
    page.screenshot(path=str(screenshots / "jobs-composer-new.png"), full_page=True)

    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#composer-notice")).to_contain_text("Submitted as job")
    job_id = run("squeue", "-h", "-u", USER, "-o", "%i").stdout.split()[0]
    expect(page.locator("#composer-state")).to_contain_text(job_id)
    expect(page.get_by_role("button", name="Delete")).to_be_disabled()  # refused while it runs
    expect(page.locator("#composer-output-link")).to_have_text(
        f"slurm-{job_id}.out", timeout=20_000
    )
    page.screenshot(path=str(screenshots / "jobs-composer-submitted.png"), full_page=True)

    # --- Active jobs: the job, its details, Cancel ---------------------------------------------
    page.get_by_role("link", name="Active jobs").click()
    row = page.locator(f'#jobs-rows tr[data-job-id="{job_id}"]')
    expect(row).to_contain_text("debug")
    expect(row).to_contain_text("running", timeout=15_000)
    expect(row).to_contain_text("/ 2:00")
    page.screenshot(path=str(screenshots / "jobs-active.png"), full_page=True)

    row.get_by_role("button", name=job_id).click()
    details = page.locator("#job-details")
    expect(details.locator('dt[data-field="JobId"] + dd')).to_have_text(job_id)
    expect(details.locator('dt[data-field="WorkDir"] + dd')).to_have_text(str(folder))
    page.wait_for_function(  # Bootstrap's fade-in done
        "() => getComputedStyle(document.getElementById('job-details')).opacity === '1'"
    )
    page.screenshot(path=str(screenshots / "jobs-details.png"))
    details.get_by_role("button", name="Close").first.click()
    expect(details).to_be_hidden()

    row.get_by_role("button", name="Cancel").click()
    dialog = page.locator("#job-cancel")
    expect(dialog).to_contain_text(f"Cancel job {job_id}")
    dialog.get_by_role("button", name="Cancel job").click()
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("cancelled", timeout=15_000)  # refreshed without a reload
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)

    # --- the output opens in Files -------------------------------------------------------------
    page.get_by_role("link", name="Job composer").click()
    expect(page.locator("#composer-state")).to_contain_text("cancelled", timeout=15_000)
    expect(page.get_by_role("button", name="Delete")).to_be_enabled()
    page.locator("#composer-output-link").click()
    page.wait_for_url(f"**/files/edit{folder}/slurm-{job_id}.out")
    expect(page.get_by_text("countdown on").first).to_be_visible(timeout=15_000)
    page.screenshot(path=str(screenshots / "jobs-output-in-files.png"))
    assert errors == []
