"""What a person sees in a real browser: log in through the hub's login form, land on the
dashboard served by their own PUN, dismiss and acknowledge announcements, use it on a phone."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from playwright.sync_api import Browser, Page, Response, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from harness import Hub, sign_in_with_form

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SITE_TITLE = "ondemand-hub"  # DashboardExtensionApp.site_title's default


def log_in(browser: Browser, hub: Hub, erin, **context_options) -> tuple[Page, list[str]]:
    """Sign in with the real login form and wait for the dashboard (the spawn-pending page
    comes in between while the PUN starts). Returns the page and a list that collects the
    page's script errors and failed requests."""
    page = browser.new_context(**context_options).new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    sign_in_with_form(page, hub, erin.name, erin.password)
    return page, problems


def is_dismissal_of(erin, announcement):
    path = f"/user/{erin.name}/api/ondemand/announcements/{announcement.id}/dismiss"
    return lambda r: r.request.method == "POST" and r.url.endswith(path)


def expect_dashboard(page: Page, erin) -> None:
    """The layout and the greeting are there."""
    expect(page).to_have_title(f"Dashboard · {SITE_TITLE}")
    navbar = page.get_by_role("navigation", name="Main navigation")
    expect(navbar.locator(".navbar-brand")).to_have_text(SITE_TITLE)
    expect(navbar.locator(".navbar-brand")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Welcome, {erin.name}")).to_be_visible()


def stored_dismissals(erin) -> list[str]:
    """The dismissed ids in the user's own settings file, which only they can read."""
    path = erin.settings_file
    info = path.stat()
    assert (info.st_uid, info.st_gid) == (erin.entry.pw_uid, erin.entry.pw_gid), path
    assert stat.S_IMODE(info.st_mode) == 0o600, oct(info.st_mode)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    return json.loads(path.read_text())["dismissed_announcements"]


def no_horizontal_overflow(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"


def test_dismissed_announcement_stays_dismissed_after_reload(
    hub, erin, announce, browser, screenshots: Path
):
    notice = announce("notice", "Scheduled maintenance of /scratch on Tuesday.", type="info")
    page, problems = log_in(browser, hub, erin, viewport=DESKTOP)

    expect_dashboard(page, erin)
    expect(page.locator(".navbar-toggler")).to_be_hidden()  # full navbar on a desktop
    expect(page.get_by_role("link", name="Log out")).to_be_visible()
    alert = page.locator(".ondemand-announcement", has_text=notice.message)
    expect(alert).to_be_visible()
    expect(alert).to_have_class(re.compile(r"\balert-info\b"))
    expect(alert).to_have_attribute("data-announcement-id", notice.id)
    page.screenshot(path=screenshots / "desktop-dashboard.png", full_page=True)

    with page.expect_response(is_dismissal_of(erin, notice)) as dismissal:
        alert.get_by_role("button", name="Dismiss this announcement").click()
    response: Response = dismissal.value
    assert response.status == 200, f"dismissal refused: {response.status} {response.text()}"
    assert response.json() == {"status": "ok"}
    expect(page.get_by_text(notice.message)).to_have_count(0)
    assert notice.id in stored_dismissals(erin)

    page.reload()
    expect_dashboard(page, erin)
    expect(page.get_by_text(notice.message)).to_have_count(0)
    page.screenshot(path=screenshots / "desktop-dismissed.png", full_page=True)
    assert problems == []


def test_required_announcement_blocks_the_page_until_acknowledged(
    hub, erin, announce, browser, screenshots: Path
):
    policy = announce(
        "policy",
        "### Acceptable use policy updated\nPlease read the new policy before continuing.",
        type="info",
        required=True,
        dismissible=False,
    )
    page, problems = log_in(browser, hub, erin, viewport=DESKTOP)

    modal = page.get_by_role("dialog", name="Please read this announcement")
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("Please read the new policy before continuing.")
    expect(modal).to_have_attribute("data-announcement-id", policy.id)
    # Bootstrap focuses the dialog once it is fully shown; before that it ignores closing.
    expect(modal).to_be_focused()
    # Neither Escape nor a click beside the dialog closes it (closing removes "show" at once),
    # and the page behind takes no clicks.
    page.keyboard.press("Escape")
    page.mouse.click(10, DESKTOP["height"] - 10)
    expect(modal).to_have_class(re.compile(r"\bshow\b"))
    expect(modal).to_be_visible()
    try:
        page.locator(".navbar-brand").click(trial=True, timeout=1_000)
    except PlaywrightTimeoutError:
        pass
    else:
        raise AssertionError("the navbar behind the required announcement can be clicked")
    page.screenshot(path=screenshots / "desktop-required.png")

    with page.expect_response(is_dismissal_of(erin, policy)) as acknowledgement:
        modal.get_by_role("button", name="Acknowledge").click()
    response: Response = acknowledgement.value
    assert response.status == 200, f"acknowledgement refused: {response.status} {response.text()}"
    expect(modal).to_be_hidden()
    expect(page.locator(".modal-backdrop")).to_have_count(0)
    page.locator(".navbar-brand").click(trial=True)
    assert policy.id in stored_dismissals(erin)

    page.reload()
    expect_dashboard(page, erin)
    expect(page.locator(".ondemand-required-announcement")).to_have_count(0)
    expect(page.get_by_text("Acceptable use policy updated")).to_have_count(0)
    expect(page.locator(".modal-backdrop")).to_have_count(0)
    assert problems == []


def test_dashboard_fits_a_phone_with_a_collapsed_navbar(
    hub, erin, announce, browser, screenshots: Path
):
    long_path = "/gpfs/projects/" + "climate-downscaling-ensemble-" * 4 + "output"
    notice = announce(
        "phone",
        f"Project data moves to `{long_path}` on 3 June; see "
        "<https://status.example.org/incidents/2025-06-03-filesystem-migration-details>.",
        type="warning",
    )
    page, problems = log_in(
        browser, hub, erin, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )

    expect_dashboard(page, erin)
    alert = page.locator(f'.ondemand-announcement[data-announcement-id="{notice.id}"]')
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(long_path)
    toggler = page.get_by_role("button", name="Toggle navigation")
    expect(toggler).to_be_visible()
    logout = page.get_by_role("link", name="Log out")
    expect(logout).to_be_hidden()
    no_horizontal_overflow(page)
    page.screenshot(path=screenshots / "phone-dashboard.png", full_page=True)

    toggler.tap()
    # Bootstrap adds "show" once the collapse transition has ended.
    expect(page.locator("#ondemand-navbar-links")).to_have_class(re.compile(r"\bshow\b"))
    expect(logout).to_be_visible()
    expect(toggler).to_have_attribute("aria-expanded", "true")
    no_horizontal_overflow(page)
    page.screenshot(path=screenshots / "phone-menu.png", full_page=True)
    assert problems == []
