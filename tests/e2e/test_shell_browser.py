"""Browser test of the web shell through the real hub and the user's PUN: open Shell from the
navigation bar, type a command and see its output; reload and find the same terminal with the
output still there; a dropped websocket comes back on its own; the terminal fills the window in
both themes; "Open terminal here" from Files starts in that folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from harness import STAGE, Hub, ensure_account, run, running_hub, sign_in_with_form

USER, PASSWORD = "odt-shiv", "Shiv-pw-10!"

#: The lines of the terminal's buffer (scrollback and screen), right-trimmed.
BUFFER_LINES = """() => {
  const buffer = window.ondemandShell.term.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines;
}"""


@pytest.fixture(scope="module")
def shell_hub() -> Iterator[Hub]:
    ensure_account(USER, PASSWORD)
    run(STAGE, "pun", "stop", "--user", USER, check=False)
    try:
        with running_hub("e2e-shell") as h:
            yield h
    finally:
        run(STAGE, "pun", "stop", "--user", USER, check=False)


def term_name(page: Page) -> str:
    return parse_qs(urlsplit(page.url).query)["term"][0]


def wait_for_line(page: Page, line: str, timeout: float = 15_000) -> None:
    page.wait_for_function(
        f"(line) => ({BUFFER_LINES})().includes(line)", arg=line, timeout=timeout
    )


def test_shell_types_reloads_reconnects_and_fits(
    browser: Browser, shell_hub: Hub, screenshots: Path
):
    # a dark desktop: the terminal follows it until the user picks a theme
    context = browser.new_context(viewport={"width": 1200, "height": 760}, color_scheme="dark")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in_with_form(page, shell_hub, USER, PASSWORD)

    page.get_by_role("link", name="Shell", exact=True).click()
    page.wait_for_url("**/shell/?term=*")
    status = page.locator("#shell-status")
    expect(status).to_have_text("Connected", timeout=15_000)
    name = term_name(page)
    expect(page.locator("#shell")).to_have_attribute("data-theme", "dark")

    page.locator("#shell-term").click()
    page.keyboard.type("echo hello\n")
    wait_for_line(page, "hello")  # the output line, not only the typed command
    page.screenshot(path=str(screenshots / "shell-dark.png"))

    # A reload attaches to the same terminal, and its output is still there.
    page.reload()
    expect(status).to_have_text("Connected", timeout=15_000)
    assert term_name(page) == name
    wait_for_line(page, "hello")
    lines = page.evaluate(BUFFER_LINES)
    assert sum(line == "hello" for line in lines) == 1  # replayed once, not twice

    # The websocket drops: a banner says so and the page reconnects by itself.
    page.evaluate("window.ondemandShell.socket().close()")
    expect(page.locator("#shell-banner")).to_contain_text("Connection lost")
    expect(status).to_have_text("Connected", timeout=15_000)
    expect(page.locator("#shell-banner")).to_be_hidden()
    page.locator("#shell-term").click()
    page.keyboard.type("echo again-$((1+1))\n")
    wait_for_line(page, "again-2")
    assert sum(line == "hello" for line in page.evaluate(BUFFER_LINES)) == 1

    # The network goes away for a while: the page says so and comes back to the same shell.
    context.set_offline(True)
    expect(status).not_to_have_text("Connected", timeout=15_000)
    page.wait_for_timeout(3000)
    context.set_offline(False)
    expect(status).to_have_text("Connected", timeout=40_000)
    page.locator("#shell-term").click()
    page.keyboard.type("echo back-$((2+1))\n")
    wait_for_line(page, "back-3")
    assert sum(line == "hello" for line in page.evaluate(BUFFER_LINES)) == 1

    # The terminal fills the window below the navigation bar, without a page scrollbar,
    # and follows the window's size.
    box = page.locator("#shell-term").bounding_box()
    assert box["width"] == 1200 and abs(box["y"] + box["height"] - 760) <= 1
    assert page.evaluate("document.documentElement.scrollHeight") <= 760
    cols = page.evaluate("window.ondemandShell.term.cols")
    page.set_viewport_size({"width": 800, "height": 600})
    page.wait_for_function(f"() => window.ondemandShell.term.cols < {cols}")
    page.set_viewport_size({"width": 1200, "height": 760})

    # The light theme, remembered across pages.
    page.get_by_role("button", name="Switch theme").click()
    expect(page.locator("#shell")).to_have_attribute("data-theme", "light")
    background = page.evaluate("window.ondemandShell.term.options.theme.background")
    assert background == "#ffffff"
    page.screenshot(path=str(screenshots / "shell-light.png"))
    page.reload()
    expect(page.locator("#shell")).to_have_attribute("data-theme", "light")
    expect(status).to_have_text("Connected", timeout=15_000)

    # The shell exits: the page says so and offers a new one, which gets its own name.
    page.locator("#shell-term").click()
    page.keyboard.type("exit\n")
    expect(page.locator("#shell-banner")).to_contain_text("This shell has ended.")
    expect(status).to_have_text("Ended")
    page.get_by_role("button", name="Start a new shell").click()
    expect(status).to_have_text("Connected", timeout=15_000)
    assert term_name(page) != name
    assert errors == []
    context.close()


def test_a_refused_ssh_host_says_why(browser: Browser, shell_hub: Hub, screenshots: Path):
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    page = context.new_page()
    sign_in_with_form(page, shell_hub, USER, PASSWORD)
    response = page.goto(f"{shell_hub.url}/user/{USER}/shell/ssh/evil.example.org")
    assert response.status == 403
    expect(page.locator("#shell-error")).to_contain_text(
        "ssh to evil.example.org is not allowed from the web shell."
    )
    expect(page.get_by_role("link", name="this portal host")).to_be_visible()
    page.screenshot(path=str(screenshots / "shell-refused.png"))
    context.close()


def test_open_terminal_here_from_files(browser: Browser, shell_hub: Hub):
    home = Path(f"/home/{USER}")
    folder = home / "data & results #1"
    folder.mkdir(exist_ok=True)
    shutil.chown(folder, USER, USER)
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    page = context.new_page()
    sign_in_with_form(page, shell_hub, USER, PASSWORD)
    page.goto(f"{shell_hub.url}/user/{USER}/files/fs{quote(str(folder))}/")
    with context.expect_page() as opened:
        page.get_by_role("link", name="Open terminal here").click()
    shell = opened.value
    expect(shell.locator("#shell-status")).to_have_text("Connected", timeout=15_000)
    shell.locator("#shell-term").click()
    shell.keyboard.type('echo "in:$(pwd)"\n')
    wait_for_line(shell, f"in:{folder}")
    context.close()
