"""The Files app in a real browser, through the real stack (hub login form → proxy → the user's
nginx → jupyter-server as the user): browse with breadcrumbs, upload two files with the progress
bar, rename, edit and save, the changed-on-disk prompt, delete.

Only the account odt-frank is used (no other test touches it). Every test works in a fresh
~odt-frank/e2e-files that it seeds itself, and checks the result on disk as root."""

from __future__ import annotations

import os
import pwd
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Locator, Page, Request, Response, expect

from harness import STAGE, Hub, ensure_account, run, running_hub, sign_in_with_form

USER = "odt-frank"
PASSWORD = "Frank-pw-6!"
WORK_DIR_NAME = "e2e-files"
DESKTOP = {"width": 1280, "height": 860}
BIG_UPLOAD = 20 * 1024 * 1024  # with the throttle below, the progress bar moves for ~1 s
UPLOAD_BYTES_PER_SECOND = 20 * 1024 * 1024


@dataclass(frozen=True)
class Frank:
    """The test account and its work directory."""

    name: str
    password: str
    entry: pwd.struct_passwd

    @property
    def work_dir(self) -> Path:
        return Path(self.entry.pw_dir) / WORK_DIR_NAME

    def owns(self, path: Path) -> bool:
        info = path.stat()
        return (info.st_uid, info.st_gid) == (self.entry.pw_uid, self.entry.pw_gid)


def stop_pun() -> None:
    run(STAGE, "pun", "stop", "--user", USER, check=False)


@pytest.fixture(scope="module")
def frank() -> Iterator[Frank]:
    """odt-frank with no PUN left from an earlier run; its work dir is removed at the end."""
    ensure_account(USER, PASSWORD)
    account = Frank(USER, PASSWORD, pwd.getpwnam(USER))
    stop_pun()
    try:
        yield account
    finally:
        stop_pun()
        shutil.rmtree(account.work_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def files_hub(frank) -> Iterator[Hub]:
    """A hub of this module's own: conftest's `hub` would also set up odt-erin."""
    with running_hub("e2e-files") as h:
        yield h


@pytest.fixture
def work_dir(frank) -> Path:
    """An empty ~odt-frank/e2e-files owned by odt-frank, fresh for each test."""
    shutil.rmtree(frank.work_dir, ignore_errors=True)
    frank.work_dir.mkdir(mode=0o755)
    shutil.chown(frank.work_dir, USER, USER)
    return frank.work_dir


def put(path: Path, content: str | None = None) -> Path:
    """A file (or, without content, a directory) owned by odt-frank, written as root."""
    if content is None:
        path.mkdir(mode=0o755)
    else:
        path.write_text(content)
    shutil.chown(path, USER, USER)
    return path


# ---- the browser side -----------------------------------------------------------------------


@dataclass
class Watch:
    """What went wrong in a page: script errors, requests that got no reply (e.g. a redirect
    loop) and HTTP replies >= 400 other than those a test announced with `allow` (collected in
    `allowed`).

    Used as ``with watch:`` around a test's steps: a failing step reports these problems with
    its own message (a listing that does not refresh is often a failed request), and at the end
    there must be none."""

    problems: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    rules: list[tuple[int, str, str]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def allow(self, status: int, method: str, url_suffix: str) -> None:
        self.rules.append((status, method, url_suffix))

    def _response(self, r: Response) -> None:
        if r.status < 400:
            return
        line = f"{r.status} {r.request.method} {r.url}"
        for status, method, suffix in self.rules:
            if (r.status, r.request.method) == (status, method) and r.url.endswith(suffix):
                self.allowed.append(line)
                return
        self.problems.append(line)

    def _failed(self, request: Request) -> None:
        # ERR_ABORTED: the page itself dropped the request (a newer listing replaces an older)
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"{request.failure} {request.method} {request.url}")

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is not None:
            if self.problems and isinstance(error, Exception):  # also Playwright's timeouts
                raise AssertionError(f"{error}\nproblems in the page: {self.problems}") from error
            return
        assert self.problems == [], self.problems


def log_in(browser: Browser, hub: Hub, frank: Frank) -> tuple[Page, Watch]:
    """Sign in with the hub's real login form and wait for the dashboard of frank's PUN."""
    page = browser.new_context(viewport=DESKTOP).new_page()
    watch = Watch()
    watch.attach(page)
    sign_in_with_form(page, hub, frank.name, frank.password)
    return page, watch


def files_url(hub: Hub, path: Path) -> str:
    return f"{hub.url}/user/{USER}/files/fs{quote(str(path))}"


def api_suffix(endpoint: str) -> str:
    return f"/user/{USER}/files/api/{endpoint}"


def open_folder(browser: Browser, hub: Hub, frank: Frank, path: Path) -> tuple[Page, Watch]:
    page, watch = log_in(browser, hub, frank)
    page.goto(files_url(hub, path) + "/")
    expect_folder(page, path)
    return page, watch


def expect_folder(page: Page, path: Path) -> None:
    expect(page).to_have_title(re.compile(rf"^{re.escape(str(path))} · Files · "))
    expect(page.get_by_role("textbox", name="Folder path")).to_have_value(str(path))
    expect(page.get_by_role("table")).to_be_visible()


def names(page: Page) -> Locator:
    """The name links of the listing, in the listing's order."""
    return page.locator("#files-rows .files-name-link")


def row(page: Page, name: str) -> Locator:
    return page.locator("#files-rows tr").filter(
        has=page.get_by_role("link", name=name, exact=True)
    )


def crumbs(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Folder path").get_by_role("listitem")


def is_api(method: str, endpoint: str) -> Callable[[Response], bool]:
    return lambda r: r.request.method == method and r.url.endswith(api_suffix(endpoint))


def wait_api(page: Page, method: str, endpoint: str):
    return page.expect_response(is_api(method, endpoint))


# ---- the tests ------------------------------------------------------------------------------


def test_browse_into_a_folder_and_back_with_the_breadcrumbs(
    files_hub, frank, work_dir, browser, screenshots: Path
):
    sub = put(work_dir / "results")
    put(sub / "run-001.out", "converged after 42 iterations\n")
    put(work_dir / "notes.txt", "to do\n")
    put(work_dir / "job.sbatch", "#!/bin/bash\n")

    page, watch = open_folder(browser, files_hub, frank, work_dir)
    with watch:
        home_parts = list(work_dir.parts[1:])  # e.g. ["home", "odt-frank", "e2e-files"]
        expect(crumbs(page)).to_have_text(["Root folder", *home_parts])
        expect(crumbs(page).last).to_have_attribute("aria-current", "page")
        expect(page.get_by_role("table")).to_contain_text(f"Contents of {work_dir}")
        for header in ("Name", "Size", "Modified", "Permissions"):
            expect(page.get_by_role("columnheader", name=header)).to_be_visible()
        expect(names(page)).to_have_text(["job.sbatch", "notes.txt", "results"])
        expect(page.locator("#files-count")).to_have_text("3 items")
        expect(row(page, "results").locator(".files-col-size")).to_have_text("—")
        expect(row(page, "notes.txt").locator(".files-col-mode")).to_have_text("-rw-r--r--")
        page.screenshot(path=screenshots / "files-folder.png", full_page=True)

        page.get_by_role("link", name="results", exact=True).click()
        page.wait_for_url(files_url(files_hub, sub))
        expect_folder(page, sub)
        expect(crumbs(page)).to_have_text(["Root folder", *home_parts, "results"])
        expect(names(page)).to_have_text(["run-001.out"])
        expect(page.locator("#files-count")).to_have_text("1 item")
        page.screenshot(path=screenshots / "files-subfolder.png", full_page=True)

        crumb = page.get_by_role("navigation", name="Folder path").get_by_role(
            "link", name=WORK_DIR_NAME
        )
        crumb.click()
        page.wait_for_url(files_url(files_hub, work_dir))
        expect_folder(page, work_dir)
        expect(crumbs(page).last).to_have_text(WORK_DIR_NAME)
        expect(names(page)).to_have_text(["job.sbatch", "notes.txt", "results"])


# Records every state of the overall upload bar (visible, aria-valuenow, text) as it changes.
RECORD_UPLOAD_SUMMARY = """() => {
  const summary = document.getElementById("files-upload-summary");
  const bar = summary.querySelector("[role=progressbar]");
  const text = summary.querySelector(".files-upload-summary-text");
  window.uploadStates = [];
  new MutationObserver(() => window.uploadStates.push({
    visible: summary.checkVisibility(),
    now: Number(bar.getAttribute("aria-valuenow")),
    text: text.textContent,
  })).observe(summary, { attributes: true, childList: true, characterData: true, subtree: true });
}"""


# Whether the progress bar named `arg` is part-way (0 < aria-valuenow < 100).
PART_WAY = """(name) => {
  const bar = document.querySelector(`[role=progressbar][aria-label="${name}"]`);
  const now = bar ? Number(bar.getAttribute("aria-valuenow")) : 0;
  return now > 0 && now < 100;
}"""


def throttle_uploads(page: Page, bytes_per_second: int) -> None:
    """Chromium's network emulation (DevTools protocol) for this page's request bodies."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


def test_upload_two_files_with_the_progress_bar(
    files_hub, frank, work_dir, browser, screenshots: Path, tmp_path: Path
):
    big = tmp_path / "simulation-output.bin"
    big.write_bytes(os.urandom(BIG_UPLOAD))
    small = tmp_path / "README upload.txt"  # a space in the name on purpose
    small.write_text("two files, one big\n")

    page, watch = open_folder(browser, files_hub, frank, work_dir)
    with watch:
        expect(page.get_by_text("This folder is empty.")).to_be_visible()
        page.evaluate(RECORD_UPLOAD_SUMMARY)
        overall = page.get_by_role("progressbar", name="All uploads")
        expect(overall).to_be_hidden()

        # Over loopback 20 MiB go up in one progress event; at the speed of a fast link the
        # bar is seen moving for about a second.
        throttle_uploads(page, UPLOAD_BYTES_PER_SECOND)
        page.set_input_files("#files-upload-input", [big, small])
        expect(overall).to_be_visible()
        expect(page.get_by_role("progressbar", name=big.name)).to_be_visible()
        expect(page.get_by_role("progressbar", name=small.name)).to_be_visible()
        page.wait_for_function(PART_WAY, arg="All uploads", timeout=10_000)
        page.screenshot(path=screenshots / "files-upload-progress.png")
        summary = page.locator("#files-upload-summary")
        expect(summary).to_contain_text("Uploaded 2 files", timeout=20_000)
        expect(overall).to_have_attribute("aria-valuenow", "100")
        expect(overall.locator(".progress-bar")).to_have_class(re.compile(r"\bbg-success\b"))
        for name in (big.name, small.name):
            expect(page.get_by_role("progressbar", name=name)).to_have_attribute(
                "aria-valuenow", "100"
            )
        expect(names(page)).to_have_text([small.name, big.name])
        expect(row(page, big.name).locator(".files-col-size")).to_have_text("20 MiB")
        page.screenshot(path=screenshots / "files-upload-done.png")

        # The bar was on screen while the bytes were still going up, and only ever moved forward.
        states = page.evaluate("window.uploadStates")
        assert states, "the upload summary never changed"
        first, last = states[0], states[-1]
        assert first["visible"] and first["text"].startswith("Uploading 1 of 2 files"), first
        assert any(0 < s["now"] < 100 and s["text"].startswith("Uploading") for s in states)
        assert last == {"visible": True, "now": 100, "text": "Uploaded 2 files"}, last
        values = [s["now"] for s in states]
        assert values == sorted(values), values

        # Byte for byte what was sent, owned by the user, and nothing else left in the folder.
        assert sorted(os.listdir(work_dir)) == sorted([big.name, small.name])
        for sent in (big, small):
            stored = work_dir / sent.name
            assert stored.read_bytes() == sent.read_bytes(), stored
            assert frank.owns(stored), stored


def test_rename_a_file(files_hub, frank, work_dir, browser, screenshots: Path):
    put(work_dir / "draft.txt", "first draft\n")
    put(work_dir / "other.txt", "left alone\n")

    page, watch = open_folder(browser, files_hub, frank, work_dir)
    with watch:
        page.get_by_role("button", name="Actions for draft.txt").click()
        row(page, "draft.txt").get_by_role("button", name="Rename…").click()
        dialog = page.get_by_role("dialog", name="Rename", exact=True)
        expect(dialog).to_be_visible()
        name_input = dialog.get_by_label("New name")
        expect(name_input).to_have_value("draft.txt")
        expect(name_input).to_be_focused()
        name_input.fill("final version.txt")
        page.screenshot(path=screenshots / "files-rename.png")
        with wait_api(page, "POST", "rename") as reply:
            dialog.get_by_role("button", name="Rename", exact=True).click()
        assert reply.value.status == 200, reply.value.text()
        expect(dialog).to_be_hidden()
        expect(names(page)).to_have_text(["final version.txt", "other.txt"])

        renamed = work_dir / "final version.txt"
        assert not (work_dir / "draft.txt").exists()
        assert renamed.read_text() == "first draft\n"
        assert frank.owns(renamed)
        assert (work_dir / "other.txt").read_text() == "left alone\n"


def test_edit_save_and_the_changed_on_disk_prompt(
    files_hub, frank, work_dir, browser, screenshots: Path
):
    script = put(work_dir / "job.sh", "#!/bin/bash\necho start\n")

    page, watch = open_folder(browser, files_hub, frank, work_dir)
    with watch:
        # The two conflicts provoked below are refused with 412: expected, and counted.
        watch.allow(412, "PUT", api_suffix("content"))
        page.get_by_role("button", name="Actions for job.sh").click()
        row(page, "job.sh").get_by_role("link", name="Edit").click()
        page.wait_for_url(f"{files_hub.url}/user/{USER}/files/edit{quote(str(script))}")
        expect(page).to_have_title(re.compile(r"^job\.sh · Editor · "))
        status = page.locator("#editor-status")
        expect(status).to_have_text(re.compile(r"^Opened "))
        # Ace's text input: labelled for screen readers when the editor opens (Ace replaces
        # the label with "Cursor at row N" once the cursor moves, so it is found by class).
        text_input = page.locator("#editor .ace_text-input")
        expect(text_input).to_have_attribute("aria-label", re.compile(r"^Contents of job\.sh"))
        dirty = page.get_by_text("Unsaved changes")
        expect(dirty).to_be_hidden()

        def type_at_end(text: str) -> None:
            text_input.focus()
            page.keyboard.press("Control+End")
            page.keyboard.type(text)
            expect(dirty).to_be_visible()

        def editor_text() -> str:
            return page.evaluate("ace.edit(document.getElementById('editor')).getValue()")

        # Type and save with Ctrl-S.
        type_at_end("echo first edit\n")
        with wait_api(page, "PUT", "content") as reply:
            page.keyboard.press("Control+s")
        assert reply.value.status == 200, reply.value.text()
        expect(status).to_have_text(re.compile(r"^Saved at "))
        expect(dirty).to_be_hidden()
        saved = "#!/bin/bash\necho start\necho first edit\n"
        assert script.read_text() == saved == editor_text()
        assert frank.owns(script)

        # Someone changes the file on disk behind the editor's back; the owner stays odt-frank.
        elsewhere = saved + "echo from a batch job\n"
        script.write_text(elsewhere)
        shutil.chown(script, USER, USER)
        type_at_end("echo mine\n")
        mine = saved + "echo mine\n"

        # Saving now asks first; Cancel keeps the editor's text and leaves the disk alone.
        with wait_api(page, "PUT", "content") as reply:
            page.keyboard.press("Control+s")
        assert reply.value.status == 412, reply.value.text()
        prompt = page.get_by_role("dialog", name=re.compile("changed on disk"))
        expect(prompt).to_be_visible()
        # Bootstrap focuses a dialog once it has faded in; before that it ignores closing.
        expect(prompt).to_be_focused()
        expect(prompt).to_contain_text("Overwrite replaces the file on disk with your version.")
        expect(status).to_have_text("Not saved: the file changed on disk")
        page.screenshot(path=screenshots / "files-editor-conflict.png")
        prompt.locator(".modal-footer").get_by_role("button", name="Cancel").click()
        expect(prompt).to_be_hidden()
        expect(dirty).to_be_visible()
        assert editor_text() == mine
        assert script.read_text() == elsewhere

        # Saving again asks again; Overwrite puts the editor's text on disk.
        with wait_api(page, "PUT", "content") as reply:
            page.get_by_role("button", name="Save").click()
        assert reply.value.status == 412, reply.value.text()
        expect(prompt).to_be_focused()
        assert script.read_text() == elsewhere
        with wait_api(page, "PUT", "content") as reply:
            prompt.get_by_role("button", name="Overwrite").click()
        assert reply.value.status == 200, reply.value.text()
        expect(prompt).to_be_hidden()
        expect(status).to_have_text(re.compile(r"^Saved at "))
        expect(dirty).to_be_hidden()
        assert script.read_text() == mine == editor_text()
        assert frank.owns(script)
        page.screenshot(path=screenshots / "files-editor-saved.png")
        assert len(watch.allowed) == 2, watch.allowed


def test_delete_a_selected_file_after_confirming(
    files_hub, frank, work_dir, browser, screenshots: Path
):
    put(work_dir / "keep.txt", "keep\n")
    doomed = put(work_dir / "scratch-output.log", "throw away\n")

    page, watch = open_folder(browser, files_hub, frank, work_dir)
    with watch:
        toolbar = page.get_by_role("toolbar", name="File actions")
        delete_button = toolbar.get_by_role("button", name="Delete", exact=True)
        expect(delete_button).to_be_disabled()
        page.get_by_role("checkbox", name=f"Select {doomed.name}").check()
        expect(page.locator("#files-selection-count")).to_have_text("1 selected")
        expect(delete_button).to_be_enabled()
        delete_button.click()

        dialog = page.get_by_role("dialog", name="Delete", exact=True)
        expect(dialog).to_be_visible()
        expect(dialog).to_be_focused()  # faded in
        expect(dialog).to_contain_text(f"Delete “{doomed.name}” permanently?")
        page.screenshot(path=screenshots / "files-delete-confirm.png")
        assert doomed.exists()  # nothing happens before the confirmation
        with wait_api(page, "POST", "delete") as reply:
            dialog.get_by_role("button", name="Delete 1 item").click()
        assert reply.value.status == 200, reply.value.text()
        assert reply.value.json() == {"status": "ok", "errors": []}
        expect(dialog).to_be_hidden()
        expect(names(page)).to_have_text(["keep.txt"])
        expect(
            page.get_by_role("status").filter(has_text=f"Deleted “{doomed.name}”.")
        ).to_be_visible()
        assert not doomed.exists()
        assert (work_dir / "keep.txt").read_text() == "keep\n"
        page.screenshot(path=screenshots / "files-deleted.png")
