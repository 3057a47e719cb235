"""The dashboard extension in a real jupyter-server: pages, the dismiss API, XSRF, static files."""

from __future__ import annotations

import json
import logging
import re
import stat
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from jupyter_server.utils import url_path_join
from tornado.httpclient import HTTPClientError

from ondemand_dashboard import STATIC_DIR, DashboardExtensionApp
from ondemand_hub.site.announcements import announcement_id


def page_text(response) -> str:
    return response.body.decode("utf-8")


def ids_in_page(html: str) -> list[str]:
    return re.findall(r'data-announcement-id="([^"]+)"', html)


async def fetch_error(fetch, *parts, **kwargs) -> HTTPClientError:
    with pytest.raises(HTTPClientError) as excinfo:
        await fetch(*parts, **kwargs)
    return excinfo.value


def write(path, text: str) -> str:
    """Write an announcement file and return the id the portal gives it."""
    path.write_text(text, encoding="utf-8")
    return announcement_id(path, text)


async def dismiss(jp_fetch, announcement: str):
    return await jp_fetch(
        "api", "ondemand", "announcements", announcement, "dismiss", method="POST", body=b""
    )


async def test_dashboard_renders_layout_announcements_and_motd(
    jp_fetch, jp_base_url, announcements_dir, motd_path
):
    write(announcements_dir / "maintenance.md", "Maintenance on **Tuesday** 08:00.\n")
    write(announcements_dir / "gpu.yml", "msg: New GPU partition\ntype: success\n")
    motd_path.write_text("# Welcome to the cluster\n\nUse `sbatch` to submit jobs.\n")

    response = await jp_fetch("dashboard")
    html = page_text(response)

    assert response.code == 200
    assert "<title>Dashboard · Example HPC Portal</title>" in html
    brand = re.search(
        r'<a class="navbar-brand[^"]*" href="([^"]+)">\s*<i[^>]*></i>([^<]+?)\s*</a>', html
    )
    assert brand.groups() == (f"{jp_base_url}dashboard", "Example HPC Portal")
    assert '<a class="nav-link text-nowrap" href="/hub/logout">' in html
    assert 'title="Signed in as alice"' in html
    assert "Welcome, alice" in html
    assert 'class="alert alert-success' in html
    assert "New GPU partition" in html
    assert 'class="alert alert-warning' in html
    assert "Maintenance on <strong>Tuesday</strong> 08:00." in html
    assert "<h1>Welcome to the cluster</h1>" in html
    assert "<code>sbatch</code>" in html
    # gpu.yml sorts before maintenance.md
    assert html.index("New GPU partition") < html.index("Maintenance on")


async def test_navbar_links_only_to_existing_pages(jp_fetch, jp_base_url):
    html = page_text(await jp_fetch("dashboard"))

    nav = html[html.index("<nav") : html.index("</nav>")]
    assert re.findall(r'href="([^"]+)"', nav) == [
        f"{jp_base_url}dashboard",
        f"{jp_base_url}dashboard",
        "/hub/logout",
    ]


@pytest.mark.parametrize(
    ("host", "base", "expected"),
    [
        ("", "/", "/hub/spawn-pending/alice/jupyter-1"),
        ("", "/portal/", "/portal/hub/spawn-pending/alice/jupyter-1"),
        # one origin per user: the PUN is on alice.portal.example.org, the hub on the bare host
        (
            "https://portal.example.org",
            "/",
            "https://portal.example.org/hub/spawn-pending/alice/jupyter-1",
        ),
    ],
)
def test_hub_links_name_the_hub_host_with_one_origin_per_user(monkeypatch, host, base, expected):
    from ondemand_dashboard.paths import hub_page_url

    monkeypatch.setenv("JUPYTERHUB_HOST", host)
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", base)
    assert hub_page_url("spawn-pending", "alice", "jupyter-1") == expected


async def test_empty_dashboard_says_so(jp_fetch):
    html = page_text(await jp_fetch("dashboard"))

    assert "No announcements right now." in html
    assert "Message of the day" not in html


async def test_page_assets_are_served(jp_fetch, jp_base_url, http_server_client):
    html = page_text(await jp_fetch("dashboard"))
    assets = re.findall(r'(?:href|src)="([^"]+/static/[^"]+)"', html)

    assert len(assets) == 6  # bootstrap css + js, icons css, portal js, dashboard css + js
    for url in assets:
        response = await http_server_client.fetch(url)
        assert response.code == 200, url


async def test_dismiss_stores_in_settings_file_and_hides_announcement(
    jp_fetch, announcements_dir, settings_path
):
    keep = write(announcements_dir / "keep.md", "Still here.\n")
    gone = write(announcements_dir / "gone.md", "Dismiss me.\n")
    assert sorted(ids_in_page(page_text(await jp_fetch("dashboard")))) == sorted([keep, gone])

    response = await dismiss(jp_fetch, gone)

    assert response.code == 200
    assert json.loads(response.body) == {"status": "ok"}
    assert json.loads(settings_path.read_text()) == {"dismissed_announcements": [gone]}
    assert stat.S_IMODE(settings_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings_path.parent.stat().st_mode) == 0o700
    html = page_text(await jp_fetch("dashboard"))
    assert ids_in_page(html) == [keep]
    assert "Dismiss me." not in html


async def test_edited_announcement_shows_again(jp_fetch, announcements_dir):
    old = write(announcements_dir / "news.md", "Version 1.\n")
    await dismiss(jp_fetch, old)

    new = write(announcements_dir / "news.md", "Version 2.\n")
    html = page_text(await jp_fetch("dashboard"))

    assert ids_in_page(html) == [new]
    assert "Version 2." in html


async def test_required_announcement_is_a_blocking_modal_until_acknowledged(
    jp_fetch, announcements_dir, settings_path
):
    required = write(
        announcements_dir / "policy.yml",
        "msg: Accept the **acceptable use policy**.\nrequired: true\ndismissible: false\n",
    )

    html = page_text(await jp_fetch("dashboard"))
    modal = html[html.index('<div class="modal fade ondemand-required-announcement"') :]

    assert f'data-announcement-id="{required}"' in modal
    assert 'data-bs-backdrop="static"' in modal
    assert 'data-bs-keyboard="false"' in modal
    assert "Acknowledge" in modal
    assert "Accept the <strong>acceptable use policy</strong>." in modal
    assert 'class="btn-close"' not in html

    assert json.loads((await dismiss(jp_fetch, required)).body) == {"status": "ok"}
    assert "ondemand-required-announcement" not in page_text(await jp_fetch("dashboard"))
    assert json.loads(settings_path.read_text()) == {"dismissed_announcements": [required]}


async def test_dismiss_unknown_id_is_410_json(jp_fetch, settings_path):
    error = await fetch_error(dismiss, jp_fetch, "nothing-123456789abc")

    assert error.code == 410
    assert json.loads(error.response.body) == {
        "status": "error",
        "message": "No current announcement has id 'nothing-123456789abc'",
    }
    assert not settings_path.exists()


async def test_dismiss_non_dismissible_is_400(jp_fetch, announcements_dir, settings_path):
    pinned = write(announcements_dir / "pinned.yml", "msg: Always here\ndismissible: false\n")

    error = await fetch_error(dismiss, jp_fetch, pinned)

    assert error.code == 400
    assert json.loads(error.response.body) == {
        "status": "error",
        "message": f"Announcement {pinned!r} cannot be dismissed",
    }
    assert not settings_path.exists()
    assert 'class="btn-close"' not in page_text(await jp_fetch("dashboard"))


async def test_broken_file_next_to_good_one_logs_warning(jp_fetch, announcements_dir, caplog):
    (announcements_dir / "a-broken.yml").write_text("msg: [oops\n")
    write(announcements_dir / "b-good.md", "The good one.\n")

    with caplog.at_level(logging.WARNING):
        response = await jp_fetch("dashboard")

    assert response.code == 200
    assert "The good one." in page_text(response)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"Ignoring announcement {announcements_dir}/a-broken.yml: invalid YAML at line 2: "
        "expected ',' or ']', but got '<stream end>'"
    ]


async def test_unreadable_motd_logs_warning(jp_fetch, motd_path, caplog):
    motd_path.write_bytes(b"caf\xe9\n")

    with caplog.at_level(logging.WARNING):
        response = await jp_fetch("dashboard")

    assert response.code == 200
    assert "Message of the day" not in page_text(response)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"Ignoring message of the day {motd_path}: expected UTF-8 text, got byte 0xe9 at offset 3"
    ]


async def test_corrupt_settings_file_is_ignored_then_rewritten(
    jp_fetch, announcements_dir, settings_path, caplog
):
    news = write(announcements_dir / "news.md", "News.\n")
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text("{not json")

    with caplog.at_level(logging.WARNING):
        response = await jp_fetch("dashboard")

    assert response.code == 200
    assert ids_in_page(page_text(response)) == [news]
    assert any(
        r.getMessage().startswith(f"Ignoring user settings {settings_path}: invalid JSON")
        for r in caplog.records
    )
    assert (await dismiss(jp_fetch, news)).code == 200
    assert json.loads(settings_path.read_text()) == {"dismissed_announcements": [news]}


async def test_settings_keep_other_keys_and_drop_stale_ids(
    jp_fetch, announcements_dir, settings_path
):
    news = write(announcements_dir / "news.md", "News.\n")
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(
        json.dumps({"theme": "dark", "dismissed_announcements": ["removed-000000000000"]})
    )

    await dismiss(jp_fetch, news)

    assert json.loads(settings_path.read_text()) == {
        "dismissed_announcements": [news],
        "theme": "dark",
    }


async def test_announcement_html_is_sanitised_in_page(jp_fetch, announcements_dir, motd_path):
    write(
        announcements_dir / "evil.md",
        '<script>alert("pwned")</script>\n\n'
        '<img src="x.png" onerror="alert(1)">\n\n'
        "[click](javascript:alert(2))\n\n"
        '<a href="javascript:alert(3)" onclick="alert(4)">raw</a>\n',
    )
    motd_path.write_text('<svg onload="alert(5)"></svg><iframe src="https://evil"></iframe>ok\n')

    html = page_text(await jp_fetch("dashboard"))

    assert "alert(" not in html.replace("[click](javascript:alert(2))", "")
    assert "onerror" not in html
    assert "onclick" not in html
    assert "onload" not in html
    assert "<iframe" not in html
    assert 'href="javascript:' not in html
    assert '<img src="x.png">' in html
    assert '<a rel="noopener noreferrer">raw</a>' in html


async def test_post_without_xsrf_token_is_rejected_with_cookies(
    jp_fetch, jp_base_url, http_server_client, announcements_dir, settings_path
):
    news = write(announcements_dir / "news.md", "News.\n")
    # Log in the way a browser does: the token once, then only cookies.
    page = await jp_fetch("dashboard")
    cookies = SimpleCookie()
    for header in page.headers.get_list("Set-Cookie"):
        cookies.load(header)
    assert "_xsrf" in cookies
    cookie_header = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
    url = url_path_join(jp_base_url, "api/ondemand/announcements", news, "dismiss")

    with pytest.raises(HTTPClientError) as excinfo:
        await http_server_client.fetch(
            url, method="POST", body=b"", headers={"Cookie": cookie_header}
        )

    assert excinfo.value.code == 403
    assert json.loads(excinfo.value.response.body)["status"] == "error"
    assert not settings_path.exists()

    response = await http_server_client.fetch(
        url,
        method="POST",
        body=b"",
        headers={"Cookie": cookie_header, "X-XSRFToken": cookies["_xsrf"].value},
    )
    assert json.loads(response.body) == {"status": "ok"}
    assert json.loads(settings_path.read_text()) == {"dismissed_announcements": [news]}


async def test_pages_require_authentication(jp_base_url, http_server_client):
    with pytest.raises(HTTPClientError) as excinfo:
        await http_server_client.fetch(
            url_path_join(jp_base_url, "dashboard"), follow_redirects=False
        )

    assert excinfo.value.code == 302
    assert "/login" in excinfo.value.response.headers["Location"]


async def test_vendor_serves_bootstrap(jp_fetch, vendor_dir):
    response = await jp_fetch("static", "vendor", "bootstrap", "dist", "css", "bootstrap.min.css")

    assert response.code == 200
    assert response.headers["Content-Type"] == "text/css"
    assert response.body == (vendor_dir / "bootstrap/dist/css/bootstrap.min.css").read_bytes()


async def test_vendor_serves_icon_fonts(jp_fetch):
    response = await jp_fetch(
        "static", "vendor", "bootstrap-icons", "font", "fonts", "bootstrap-icons.woff2"
    )

    assert response.code == 200


@pytest.mark.parametrize(
    "path",
    [
        "configurable-http-proxy/package.json",  # installed, but not allowlisted
        "bootstrap/../configurable-http-proxy/package.json",  # resolves to the same
        ".package-lock.json",
        "bootstrap/dist/css/missing.css",
    ],
)
async def test_vendor_refuses_other_packages(jp_base_url, http_server_client, path):
    with pytest.raises(HTTPClientError) as excinfo:
        await http_server_client.fetch(url_path_join(jp_base_url, "static/vendor", path))

    assert excinfo.value.code == 404


@pytest.mark.parametrize(
    "path",
    [
        "bootstrap/../../../../etc/passwd",
        "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "bootstrap%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    ],
)
async def test_vendor_refuses_traversal(jp_base_url, http_server_client, path):
    with pytest.raises(HTTPClientError) as excinfo:
        await http_server_client.fetch(url_path_join(jp_base_url, "static/vendor", path))

    assert excinfo.value.code == 403


async def test_extension_static_files_are_served(jp_fetch):
    response = await jp_fetch("static", "ondemand_dashboard", "dashboard.js")

    assert response.body == Path(STATIC_DIR, "dashboard.js").read_bytes()
    assert b"X-XSRFToken" in response.body


def test_configurable_traits_have_help():
    traits = DashboardExtensionApp.class_own_traits(config=True)

    assert set(traits) >= {
        "site_title",
        "announcements_dir",
        "motd_path",
        "vendor_dir",
        "settings_path",
        "logout_url",
    }
    assert [name for name, trait in traits.items() if not (trait.help or "").strip()] == []
