"""Browser-test fixtures: a real hub on free ports, the account odt-erin (used by no other
test), announcements dropped into the site's announcements.d, and Debian's Chromium driven by
Playwright's sync API. Everything here needs root."""

from __future__ import annotations

import hashlib
import os
import pwd
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import REPO, STAGE, Hub, ensure_account, run, running_hub  # noqa: E402

USER = "odt-erin"
PASSWORD = "Erin-pw-7!"
ANNOUNCEMENTS_DIR = Path("/etc/ondemand-hub/announcements.d")
CHROMIUM = "/usr/bin/chromium"
# Playwright cannot download its own browser here; these keep Debian's Chromium off the network
# and working as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Account:
    """The test account: its name, password, passwd entry and portal settings file."""

    name: str
    password: str
    entry: pwd.struct_passwd

    @property
    def settings_file(self) -> Path:
        """The dashboard's default settings_path, expanded for the user (usersettings.py)."""
        return Path(self.entry.pw_dir) / ".config" / "ondemand-hub" / "settings.json"


@dataclass(frozen=True)
class SiteAnnouncement:
    """An announcement file this test run wrote, with the id the dashboard gives it."""

    path: Path
    message: str
    id: str


@pytest.fixture(scope="session", autouse=True)
def require_root():
    if os.geteuid() != 0:
        pytest.fail("browser tests create a Unix account and run ondemand-stage: run as root")


def stop_pun() -> None:
    run(STAGE, "pun", "stop", "--user", USER, check=False)


@pytest.fixture(scope="module")
def erin() -> Iterator[Account]:
    """The account odt-erin with no PUN and no portal settings left from an earlier run."""
    ensure_account(USER, PASSWORD)
    account = Account(USER, PASSWORD, pwd.getpwnam(USER))
    stop_pun()
    account.settings_file.unlink(missing_ok=True)
    try:
        yield account
    finally:
        stop_pun()


@pytest.fixture(scope="module")
def hub(erin) -> Iterator[Hub]:
    with running_hub("e2e") as h:
        yield h


@pytest.fixture
def announce() -> Iterator[Callable[..., SiteAnnouncement]]:
    """Write ``zz-e2e-<pid>-<name>.yml`` to the site's announcements.d; removed after the test.

    The message gets a unique suffix, so its text (and the id, which hashes the content) never
    matches a file of another run or another developer.
    """
    written: list[Path] = []

    def write(name: str, message: str, **fields: object) -> SiteAnnouncement:
        message = f"{message} [{uuid.uuid4().hex[:8]}]"
        text = yaml.safe_dump({"msg": message, **fields}, sort_keys=False)
        path = ANNOUNCEMENTS_DIR / f"zz-e2e-{os.getpid()}-{name}.yml"
        ANNOUNCEMENTS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        # A hidden temporary name (the loader skips dotfiles), so a PUN never reads half a file.
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)
        written.append(path)
        tmp.replace(path)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
        return SiteAnnouncement(path=path, message=message, id=f"{path.stem}-{digest}")

    try:
        yield write
    finally:
        for path in written:
            path.unlink(missing_ok=True)


SCREENSHOT_DIRS: list[Path] = []


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where screenshots go: $ONDEMAND_HUB_SCREENSHOTS, else the session's pytest tmp dir."""
    if not os.environ.get("ONDEMAND_HUB_SCREENSHOTS"):
        path = tmp_path_factory.mktemp("screenshots")
    else:
        path = Path(os.environ["ONDEMAND_HUB_SCREENSHOTS"]).resolve()
        if path.is_relative_to(REPO):
            pytest.fail(f"ONDEMAND_HUB_SCREENSHOTS={path} is inside the repository; use a tmp dir")
        path.mkdir(parents=True, exist_ok=True)
    SCREENSHOT_DIRS.append(path)
    return path


def pytest_terminal_summary(terminalreporter) -> None:
    """Say where the screenshots are, so a person can look at them."""
    for path in SCREENSHOT_DIRS:
        terminalreporter.write_line(f"browser screenshots: {path}")


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, one per test.

    Function scope on purpose: while the sync API is active it marks its own asyncio loop as
    running in this thread, which pytest-asyncio's tests in the same session must never see.
    """
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
