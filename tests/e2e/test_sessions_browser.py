"""Browser test of an interactive app, through the real hub, the user's PUN and the real
single-node Slurm: fill the JupyterLab form, watch the session start, Connect, see JupyterLab."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from harness import STAGE, Hub, ensure_account, run, running_hub, sign_in_with_form

USER, PASSWORD = "odt-gina", "Gina-pw-8!"
CLUSTER_FILE = Path("/etc/ondemand-hub/clusters.d/ondemand-e2e.yml")
CLUSTER = 'v2:\n  metadata:\n    title: "Local Slurm (ondemand)"\n  job:\n    adapter: slurm\n'


def clean_up_user() -> None:
    run(STAGE, "pun", "stop", "--user", USER, check=False)
    run("scancel", "-u", USER, check=False)


@pytest.fixture(scope="module")
def sessions_hub() -> Iterator[Hub]:
    """A hub whose only cluster is the test machine's Slurm, declared where admins do, so the
    hub's spawner and the user's PUN (whose environment is clean) both read it."""
    ensure_account(USER, PASSWORD)
    clean_up_user()
    CLUSTER_FILE.parent.mkdir(parents=True, exist_ok=True)
    assert not CLUSTER_FILE.exists(), f"would overwrite {CLUSTER_FILE}"
    CLUSTER_FILE.write_text(CLUSTER)
    try:
        with running_hub("e2e-sessions") as h:
            yield h
    finally:
        CLUSTER_FILE.unlink()
        clean_up_user()
        shutil.rmtree(Path("/home") / USER / "ondemand", ignore_errors=True)


def test_launch_jupyterlab_watch_it_start_and_connect(
    browser: Browser, sessions_hub: Hub, screenshots: Path
):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in_with_form(page, sessions_hub, USER, PASSWORD)

    page.get_by_role("link", name="Interactive Apps").click()
    page.get_by_role("link", name="Launch").first.click()
    expect(page.get_by_label("Partition")).to_have_value("debug")
    page.get_by_label("Hours").fill("1")
    page.get_by_role("button", name="Launch").click()

    page.wait_for_url("**/sessions/**", timeout=30_000)
    card = page.locator(".card", has_text="JupyterLab").first
    expect(card).to_be_visible()
    connect = card.get_by_role("link", name="Connect")
    expect(connect).to_be_visible(timeout=90_000)  # the job ran and its server answered
    expect(card).to_contain_text("running")
    page.screenshot(path=str(screenshots / "sessions-running.png"), full_page=True)
    squeue = run("squeue", "-h", "-u", USER, "-o", "%T").stdout.split()
    assert squeue == ["RUNNING"]

    with context.expect_page() as opened:
        connect.click()
    lab = opened.value
    expect(lab).to_have_title("JupyterLab", timeout=60_000)
    expect(lab.locator(".jp-LabShell")).to_be_visible(timeout=60_000)  # the app itself rendered
    expect(lab.get_by_text("File", exact=True).first).to_be_visible()
    assert f"/user/{USER}/" in lab.url and lab.url.rstrip("/").endswith("/lab")
    lab.screenshot(path=str(screenshots / "sessions-jupyterlab.png"))
    assert errors == []
