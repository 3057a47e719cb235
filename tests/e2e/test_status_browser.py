"""Browser test of System status and quota warnings, through the real hub, the user's PUN and the
real single-node Slurm: the dashboard warns about a full quota from a quota file and shows the
status card; the Status page draws its chart and table, and follows a job without a reload.

The PUN's settings (a clusters.d with this machine's Slurm, the quota file) live in a temporary
directory; the site's ``jupyter_server_config.py`` points the test account's PUN (and only its
PUN: the file checks the user) at it while the module runs, as tests/integration do. The PUN
ignores the account's own ``~/.jupyter`` (the spawner sets ``disable_user_config``). Both are
removed afterwards."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from harness import SLURM_SH, STAGE, Hub, ensure_account, run, running_hub, sign_in_with_form

USER, PASSWORD = "odt-stan", "Stan-pw-6!"
SITE_CONFIG = Path("/etc/ondemand-hub/jupyter/jupyter_server_config.py")
CLUSTER = "v2:\n  metadata:\n    title: Test HPC\n  job:\n    adapter: slurm\n"


def stop_pun() -> None:
    run(STAGE, "pun", "stop", "--user", USER, check=False)


@pytest.fixture(scope="module")
def site() -> Iterator[Path]:
    """A temporary site directory the PUN reads (clusters.d, quota.json), named in the site's
    jupyter_server_config.py for the test account only; everything removed afterwards."""
    ensure_account(USER, PASSWORD)
    stop_pun()
    directory = Path(tempfile.mkdtemp(prefix="ondemand-status-e2e-", dir="/var/tmp"))
    directory.chmod(0o755)
    (directory / "clusters.d").mkdir(mode=0o755)
    (directory / "clusters.d" / "hpc.yml").write_text(CLUSTER)
    # a second cluster whose controller does not answer (MessageTimeout=1: Slurm gives up at once)
    conf = Path("/etc/slurm/slurm.conf").read_text()
    conf = re.sub(r"(?m)^SlurmctldHost=.*$", "SlurmctldHost=vm(127.0.0.1)", conf)
    (directory / "down.conf").write_text(conf + "\nSlurmctldPort=9\nMessageTimeout=1\n")
    (directory / "clusters.d" / "zdown.yml").write_text(
        CLUSTER.replace("Test HPC", "Down HPC") + f"    conf: {directory / 'down.conf'}\n"
    )
    quota = {
        "version": 1,
        "timestamp": int(time.time()),
        "quotas": [
            {
                "user": USER,
                "path": f"/home/{USER}",
                "total_block_usage": 9_700_000,
                "block_limit": 10_000_000,
                "total_file_usage": 120,
                "file_limit": 100_000,
            },
            {
                "user": "someone-else",
                "path": "/home/someone-else",
                "total_block_usage": 10,
                "block_limit": 10,
                "total_file_usage": 1,
                "file_limit": 1,
            },
        ],
    }
    (directory / "quota.json").write_text(json.dumps(quota))
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    SITE_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    assert not SITE_CONFIG.exists(), f"would overwrite a real site config: {SITE_CONFIG}"
    SITE_CONFIG.write_text(
        "# Written by tests/e2e/test_status_browser.py while it runs; only for its account.\n"
        "import getpass\n"
        f"if getpass.getuser() == {USER!r}:\n"
        f"    c.StatusExtensionApp.clusters_dir = {str(directory / 'clusters.d')!r}\n"
        f"    c.StatusExtensionApp.quota_paths = [{str(directory / 'quota.json')!r}]\n"
        "    c.StatusExtensionApp.status_interval = 3.0\n"
        "    c.StatusExtensionApp.refresh_interval = 5.0\n"
    )
    try:
        yield directory
    finally:
        stop_pun()
        SITE_CONFIG.unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def status_hub(site) -> Iterator[Hub]:
    if run("bash", SLURM_SH, "status", check=False).returncode != 0:
        pytest.fail("Slurm is not running: bash scripts/slurm.sh start")
    with running_hub("e2e-status") as h:
        yield h


@pytest.fixture
def job() -> Iterator[str]:
    """A running 1-CPU job of this test (cancelled afterwards)."""
    out = subprocess.run(
        ["sbatch", "--parsable", "-p", "debug", "-c", "1", "-t", "5", "-o", "/dev/null",
         "--job-name=odt-status-e2e", "--wrap", "sleep 300"],
        check=True, capture_output=True, text=True, cwd="/tmp",
    )  # fmt: skip
    job_id = out.stdout.strip().split(";")[0]
    try:
        yield job_id
    finally:
        subprocess.run(["scancel", job_id], check=False)


def test_the_dashboard_warns_about_a_full_quota_and_shows_the_status_card(
    browser: Browser, status_hub: Hub, screenshots: Path
):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in_with_form(page, status_hub, USER, PASSWORD)

    warning = page.locator(".ondemand-quota-warnings .alert")
    expect(warning).to_have_count(1)
    expect(warning).to_contain_text(f"Your disk space quota on /home/{USER} is 97% used")
    expect(warning).to_contain_text("9.3 GiB of 9.5 GiB")
    expect(page.get_by_text("/home/someone-else")).to_have_count(0)

    card = page.locator("#ondemand-status-widget")
    row = card.locator('[data-cluster="hpc"]')
    expect(row).to_contain_text("Test HPC")
    expect(row.locator('[data-field="summary"]')).to_contain_text("CPUs in use", timeout=30_000)
    expect(row).to_contain_text("Up")
    expect(card.locator('[data-cluster="zdown"]')).to_contain_text("Scheduler unreachable")
    page.screenshot(path=str(screenshots / "status-dashboard.png"), full_page=True)

    card.get_by_role("link", name="Details").click()
    page.wait_for_url("**/status/")
    assert errors == []


def test_the_status_page_draws_its_chart_and_follows_a_job(
    browser: Browser, status_hub: Hub, screenshots: Path, job: str
):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in_with_form(page, status_hub, USER, PASSWORD)
    page.get_by_role("link", name="Status").click()
    page.wait_for_url("**/status/")

    cluster = page.locator('[data-cluster="hpc"]')
    expect(cluster.get_by_role("heading")).to_have_text("Test HPC")
    expect(cluster.locator('[data-field="state"]')).to_have_text("Up", timeout=30_000)
    expect(cluster.locator('[data-field="unreachable"]')).to_be_hidden()
    canvas = cluster.locator("canvas")
    expect(canvas).to_be_visible()
    page.wait_for_function(
        "c => window.Chart && Chart.getChart(c) && !Chart.getChart(c).animating",
        arg=canvas.element_handle(),
    )
    labels = canvas.evaluate("c => Chart.getChart(c).data.labels")
    # every partition of the cluster scripts/slurm.sh built (in the order of its nodes' names)
    partitions = run("sinfo", "-h", "-o", "%R").stdout.split()
    assert sorted(labels) == sorted(partitions) and {"debug", "batch"} <= set(labels)
    debug = labels.index("debug")
    drawn = canvas.evaluate(
        """c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n;
        }"""
    )
    assert drawn > 1000  # bars, axes and legend painted, not a blank canvas
    down = page.locator('[data-cluster="zdown"]')
    expect(down.locator('[data-field="state"]')).to_have_text("Scheduler unreachable")
    expect(down.locator('[data-field="unreachable"]')).to_be_visible()
    expect(down.locator('[data-field="error"]')).to_contain_text(
        "Unable to contact slurm controller"
    )
    expect(down.locator("canvas")).to_be_hidden()
    rows = cluster.locator("tbody tr")
    expect(rows).to_have_count(len(partitions))
    expect(rows.nth(debug).locator("th")).to_contain_text("debug")
    expect(rows.nth(debug).locator("th")).to_contain_text("default")

    # the job runs: the page shows it by itself (status_interval 3 s, refresh 5 s)
    for _ in range(50):
        state = run("squeue", "-h", "-j", job, "-o", "%T", check=False).stdout.strip()
        if state == "RUNNING":
            break
        time.sleep(0.2)
    running = rows.nth(debug).locator("td").nth(6)
    expect(running).not_to_have_text("0", timeout=20_000)
    used = canvas.evaluate(f"c => Chart.getChart(c).data.datasets[0].data[{debug}]")
    assert used >= 1
    page.screenshot(path=str(screenshots / "status-page.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the table scrolls alone
    expect(canvas).to_be_visible()
    page.wait_for_function("() => document.documentElement.scrollWidth <= 390", timeout=5_000)
    page.screenshot(path=str(screenshots / "status-phone.png"), full_page=True)

    subprocess.run(["scancel", job], check=False)
    assert errors == []
