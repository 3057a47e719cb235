"""Browser test of an interactive app, through the real hub, the user's PUN and the real
single-node Slurm: fill the JupyterLab form, watch the session start, Connect, see JupyterLab;
then the card's job details, its output log and thumbnail, and a second session waiting in the
queue for both CPUs, cancelled and relaunchable."""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, expect

from harness import STAGE, Hub, ensure_account, run, running_hub, sign_in_with_form

USER, PASSWORD = "odt-gina", "Gina-pw-8!"
FRIEND, FRIEND_PASSWORD = "odt-hugo", "Hugo-pw-9!"
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

    page.get_by_role("link", name="Apps", exact=True).click()
    page.locator('[data-app-id="jupyter"]').get_by_role("link", name="Launch").click()
    expect(page.get_by_label("Partition")).to_have_value("debug")
    page.get_by_label("Hours").fill("1")
    page.get_by_label("Cores").fill("1")  # the form remembers the 2 of the queued session below
    # no slurmdbd here: sacctmgr fails and the account stays a text field with its help
    expect(page.get_by_label("Account")).to_have_attribute("data-widget", "text_field")
    page.screenshot(path=str(screenshots / "sessions-form.png"), full_page=True)
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

    # --- back on My sessions: what Slurm says about the running session ----------------------
    job_id = squeue_field("%i")[0]
    expect(detail(card, "Job")).to_have_text(f"{job_id} on debug: running", timeout=15_000)
    expect(detail(card, "Node")).to_have_text("vm")
    expect(detail(card, "Time left")).to_have_text(re.compile(r"(59|58|57) min|1 h 00 min"))
    expect(detail(card, "Started")).not_to_be_empty()

    card.get_by_role("button", name="Output log").click()
    log = page.locator("#session-log")
    expect(log).to_be_visible()
    expect(log.locator("#session-log-text")).to_contain_text("ondemand-hub: starting jupyter on vm")
    expect(log.locator("#session-log-meta")).to_contain_text("output.log")
    page.wait_for_function(  # Bootstrap's fade-in done
        "() => getComputedStyle(document.getElementById('session-log')).opacity === '1'"
    )
    scrolled = "pre => pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4"
    assert log.locator("#session-log-text").evaluate(scrolled)  # the end of the log is in view
    page.screenshot(path=str(screenshots / "sessions-log.png"))
    log.get_by_role("button", name="Close").first.click()
    expect(log).to_be_hidden()

    # the Desktop app's job writes thumbnail.png every ~10 s; the card picks it up by itself
    name = card.get_attribute("data-session")
    write_thumbnail(Path("/home") / USER / "ondemand" / "sessions" / name / "thumbnail.png")
    thumbnail = card.locator("img.ondemand-session-thumbnail")
    expect(thumbnail).to_be_visible(timeout=15_000)
    assert thumbnail.evaluate("img => img.decode().then(() => img.naturalWidth)") == 64

    # --- a second session that needs both CPUs waits in the queue ------------------------------
    page.get_by_role("link", name="New session").click()
    page.locator('[data-app-id="jupyter"]').get_by_role("link", name="Launch").click()
    page.get_by_label("Cores").fill("2")
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url("**/sessions/**", timeout=30_000)
    waiting = page.locator(".ondemand-session-card", has_text="Queued").first
    expect(waiting).to_be_visible(timeout=30_000)
    queued = page.locator(
        f'.ondemand-session-card[data-session="{waiting.get_attribute("data-session")}"]'
    )
    expect(detail(queued, "In queue")).to_have_text(
        re.compile(r"(next|\d+(st|nd|rd|th)) in line in debug"), timeout=30_000
    )
    # Resources, or Priority when other tests' jobs wait too
    expect(detail(queued, "Waiting")).to_have_text(
        re.compile("waiting for CPUs, memory or GPUs to free up|other jobs are ahead of it")
    )
    # the backfill scheduler estimates a start within its interval (5 s here)
    expect(detail(queued, "Expected start")).not_to_have_text("not estimated yet", timeout=30_000)
    page.screenshot(path=str(screenshots / "sessions-queued.png"), full_page=True)
    # "Progress": JupyterHub's progress page, fed by the session spawner's progress()
    with context.expect_page() as opened:
        queued.get_by_role("link", name="Progress").click()
    progress = opened.value
    expect(progress.locator("#progress-message")).to_contain_text(
        re.compile(r"queued in debug, (next|number \d+) in line"), timeout=30_000
    )
    expect(progress.locator("#progress-bar")).to_be_visible()
    expect(progress.get_by_role("heading")).to_have_text(
        re.compile(r"Your session jupyter-\d+ is starting")
    )
    expect(progress.get_by_role("link", name="follow it on My sessions")).to_have_attribute(
        "href", f"/user/{USER}/sessions/"
    )
    progress.screenshot(path=str(screenshots / "sessions-progress.png"))
    progress.close()

    page.once("dialog", lambda dialog: dialog.accept())
    queued.get_by_role("button", name="Cancel").click()
    expect(queued.get_by_role("button", name="Relaunch")).to_be_visible(timeout=30_000)
    expect(queued.locator(".badge")).to_have_text("stopped")
    expect(queued).to_contain_text("cancelled", timeout=15_000)  # as squeue still lists it
    assert len(squeue_field("%i")) == 1  # only the running session's job is left

    # --- share the running JupyterLab with a collaborator, who sees it, then take it back -----
    ensure_account(FRIEND, FRIEND_PASSWORD)
    friend_context = browser.new_context(viewport={"width": 1280, "height": 800})
    friend = friend_context.new_page()
    sign_in_with_form(friend, sessions_hub, FRIEND, FRIEND_PASSWORD)  # known to the hub now
    card.get_by_role("button", name="Share").click()
    dialog = page.locator("#share-modal")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#share-list")).to_contain_text("Nobody yet")
    dialog.get_by_label("Login name").fill("no-such-user-x")
    dialog.get_by_role("button", name="Share").click()
    expect(dialog.locator("#share-error")).to_contain_text("no user 'no-such-user-x'")
    dialog.get_by_label("Login name").fill(FRIEND)
    dialog.get_by_role("button", name="Share").click()
    expect(dialog.locator("#share-list")).to_contain_text(FRIEND)
    expect(dialog.locator("#share-link")).to_have_value(re.compile(f"/user/{USER}/{name}/$"))
    page.screenshot(path=str(screenshots / "sessions-share.png"))

    friend.goto(f"{sessions_hub.url}/user/{FRIEND}/sessions/")
    shared = friend.locator("#sessions-shared")
    expect(shared).to_be_visible(timeout=15_000)
    expect(shared).to_contain_text(f"{name} ({USER})")
    expect(shared.get_by_role("link", name="Connect")).to_have_attribute(
        "href", f"/user/{USER}/{name}/"
    )
    friend.screenshot(path=str(screenshots / "sessions-shared-with-me.png"), full_page=True)

    dialog.get_by_role("button", name="Stop sharing").click()
    expect(dialog.locator("#share-list")).to_contain_text("Nobody yet")
    friend.reload()
    expect(friend.locator("#sessions-shared")).to_be_hidden(timeout=15_000)
    friend_context.close()
    assert errors == []


def squeue_field(field: str) -> list[str]:
    """One squeue field of the user's queued and running jobs."""
    return run("squeue", "-h", "-u", USER, "-t", "PD,R", "-o", field).stdout.split()


def detail(card: Locator, label: str) -> Locator:
    """The value of one row of a card's job details."""
    return card.locator(f'dt[data-field="{label}"] + dd')


def write_thumbnail(path: Path) -> None:
    """A real 64x40 PNG, written as the session's job would, owned by the user."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([40, 90, 160]) * 64 for _ in range(40))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 40, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    owner = path.parent.stat()
    os.chown(path, owner.st_uid, owner.st_gid)
