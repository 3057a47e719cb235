"""Announcement and message-of-the-day parsing: pure functions, exact equality."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest

from ondemand_hub.site.announcements import (
    Announcement,
    AnnouncementError,
    load_announcements,
    parse_announcement,
    render_markdown,
)
from ondemand_hub.site.motd import load_motd

TODAY = datetime.date(2025, 6, 1)
UTC = datetime.UTC


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def test_markdown_file_is_a_dismissible_warning():
    text = "Maintenance on **Tuesday**.\n"
    path = Path("/etc/ondemand-hub/announcements.d/maintenance.md")

    assert parse_announcement(path, text, TODAY) == Announcement(
        id=f"maintenance-{digest(text)}",
        type="warning",
        html="<p>Maintenance on <strong>Tuesday</strong>.</p>\n",
        dismissible=True,
        required=False,
        expires=None,
        source="/etc/ondemand-hub/announcements.d/maintenance.md",
    )


def test_yaml_file_with_every_key():
    text = (
        "msg: |\n"
        "  # Outage\n"
        "  See [status](https://status.example.org).\n"
        "type: danger\n"
        "dismissible: false\n"
        "required: true\n"
        "expires: 2025-06-30\n"
    )
    path = Path("/srv/a.d/outage.yml")

    assert parse_announcement(path, text, TODAY) == Announcement(
        id=f"outage-{digest(text)}",
        type="danger",
        html=(
            "<h1>Outage</h1>\n<p>See "
            '<a href="https://status.example.org" rel="noopener noreferrer">status</a>.</p>\n'
        ),
        dismissible=False,
        required=True,
        expires=datetime.date(2025, 6, 30),
        source="/srv/a.d/outage.yml",
    )


def test_yaml_defaults_and_yaml_suffix():
    announcement = parse_announcement(Path("/a/news.yaml"), "msg: hello\n", TODAY)

    assert (announcement.type, announcement.dismissible, announcement.required) == (
        "warning",
        True,
        False,
    )
    assert announcement.expires is None


@pytest.mark.parametrize(
    ("expires", "shown"),
    [
        ("2025-05-31", False),  # yesterday
        ("2025-06-01", True),  # today: shown through the whole day
        ("2025-06-02", True),  # tomorrow
        ("'2025-05-31'", False),  # quoted: an ISO string, not a YAML date
        ("'2025-06-01'", True),
    ],
)
def test_expiry_date(expires, shown):
    text = f"msg: hi\nexpires: {expires}\n"

    result = parse_announcement(Path("/a/x.yml"), text, TODAY)

    assert (result is not None) == shown


@pytest.mark.parametrize(
    ("expires", "shown"),
    [
        ("2025-06-01T11:59:59+00:00", False),
        ("2025-06-01T12:00:00+00:00", False),  # the expiry moment itself is past the end
        ("2025-06-01T12:00:01+00:00", True),
        ("2025-06-01 14:30:00+02:00", True),  # YAML timestamp with an offset
        ("2025-06-01 13:30:00+02:00", False),
    ],
)
def test_expiry_datetime_against_a_moment(expires, shown):
    now = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)

    result = parse_announcement(Path("/a/x.yml"), f"msg: hi\nexpires: {expires}\n", now)

    assert (result is not None) == shown


def test_expiry_datetime_against_a_date_keeps_the_whole_day():
    text = "msg: hi\nexpires: '2025-06-01T08:00:00'\n"

    assert parse_announcement(Path("/a/x.yml"), text, TODAY).expires == datetime.datetime(
        2025, 6, 1, 8, 0
    )
    assert parse_announcement(Path("/a/x.yml"), text, datetime.date(2025, 6, 2)) is None


def test_expiry_date_against_a_moment_uses_its_day():
    text = "msg: hi\nexpires: 2025-06-01\n"
    late_today = datetime.datetime(2025, 6, 1, 23, 59, tzinfo=UTC)
    tomorrow = datetime.datetime(2025, 6, 2, 0, 0, tzinfo=UTC)

    assert parse_announcement(Path("/a/x.yml"), text, late_today) is not None
    assert parse_announcement(Path("/a/x.yml"), text, tomorrow) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "msg: hi\ncolour: red\n",
            "/a/x.yml: unknown key 'colour': "
            "expected only msg, type, dismissible, required, expires",
        ),
        (
            "msg: hi\ncolour: red\nlevel: 3\n",
            "/a/x.yml: unknown keys 'colour', 'level': "
            "expected only msg, type, dismissible, required, expires",
        ),
        (
            "msg: hi\ntype: loud\n",
            "/a/x.yml: key 'type': expected one of info, success, warning, danger, got 'loud'",
        ),
        ("type: info\n", "/a/x.yml: key 'msg' is required: expected a Markdown message"),
        ("msg: 42\n", "/a/x.yml: key 'msg': expected a Markdown string, got 42"),
        ("msg: '  '\n", "/a/x.yml: key 'msg': expected a Markdown message, got nothing"),
        (
            "msg: hi\ndismissible: maybe\n",
            "/a/x.yml: key 'dismissible': expected true or false, got 'maybe'",
        ),
        ("msg: hi\nrequired: 1\n", "/a/x.yml: key 'required': expected true or false, got 1"),
        (
            "msg: hi\nexpires: next week\n",
            "/a/x.yml: key 'expires': expected a date (2025-06-01) or date-time "
            "(2025-06-01T18:00:00+02:00), got 'next week'",
        ),
        ("- msg: hi\n", "/a/x.yml: expected a mapping with at least key 'msg', got a list"),
        ("", "/a/x.yml: expected a mapping with at least key 'msg', got an empty file"),
        (
            "msg: [unclosed\n",
            "/a/x.yml: invalid YAML at line 2: expected ',' or ']', but got '<stream end>'",
        ),
    ],
)
def test_invalid_yaml_announcement(text, message):
    with pytest.raises(AnnouncementError) as excinfo:
        parse_announcement(Path("/a/x.yml"), text, TODAY)

    assert str(excinfo.value) == message


def test_empty_markdown_file_is_an_error():
    with pytest.raises(AnnouncementError) as excinfo:
        parse_announcement(Path("/a/x.md"), "\n\n", TODAY)

    assert str(excinfo.value) == "/a/x.md: key 'msg': expected a Markdown message, got nothing"


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("<script>alert('x')</script>\n\nsafe", "\n<p>safe</p>\n"),
        ('<img src="a.png" onerror="alert(1)">', '<img src="a.png">'),
        ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>\n"),
        ('<a href="javascript:alert(1)">x</a>', '<p><a rel="noopener noreferrer">x</a></p>\n'),
        (
            '<a href="/hub/home" target="_blank">home</a>',
            '<p><a href="/hub/home" rel="noopener noreferrer">home</a></p>\n',
        ),
        ("<div onclick='steal()'>*hi*</div>", "<div>*hi*</div>"),
        ("<style>body{display:none}</style>ok", "ok"),
    ],
)
def test_render_markdown_sanitises(markdown, html):
    assert render_markdown(markdown) == html


def test_id_changes_when_content_changes():
    path = Path("/a/notice.md")

    first = parse_announcement(path, "Old text", TODAY)
    second = parse_announcement(path, "New text", TODAY)
    again = parse_announcement(path, "Old text", TODAY)

    assert first.id != second.id
    assert first.id == again.id == f"notice-{digest('Old text')}"


def test_load_sorts_by_file_name_and_ignores_other_files(tmp_path):
    (tmp_path / "b.yml").write_text("msg: b\ntype: info\n")
    (tmp_path / "a.md").write_text("a\n")
    (tmp_path / "c.yaml").write_text("msg: c\n")
    (tmp_path / "README.txt").write_text("not an announcement")
    (tmp_path / ".a.md.swp").write_text("editor swap file")
    (tmp_path / "d.md").mkdir()

    announcements, errors = load_announcements(tmp_path, TODAY)

    assert [a.source for a in announcements] == [
        str(tmp_path / "a.md"),
        str(tmp_path / "b.yml"),
        str(tmp_path / "c.yaml"),
    ]
    assert errors == []


def test_load_skips_expired(tmp_path):
    (tmp_path / "old.yml").write_text("msg: old\nexpires: 2025-01-01\n")
    (tmp_path / "new.yml").write_text("msg: new\nexpires: 2026-01-01\n")

    announcements, errors = load_announcements(tmp_path, TODAY)

    assert [a.html for a in announcements] == ["<p>new</p>\n"]
    assert errors == []


def test_broken_file_next_to_good_one(tmp_path):
    (tmp_path / "broken.yml").write_text("msg: hi\ntype: loud\n")
    (tmp_path / "good.md").write_text("All systems go.\n")

    announcements, errors = load_announcements(tmp_path, TODAY)

    assert [a.html for a in announcements] == ["<p>All systems go.</p>\n"]
    assert errors == [
        f"{tmp_path}/broken.yml: key 'type': expected one of info, success, warning, danger, "
        "got 'loud'"
    ]


def test_bad_yaml_next_to_good_one(tmp_path):
    (tmp_path / "a.yml").write_text("msg: 'unterminated\n")
    (tmp_path / "b.yml").write_text("msg: fine\n")

    announcements, errors = load_announcements(tmp_path, TODAY)

    assert [a.html for a in announcements] == ["<p>fine</p>\n"]
    assert len(errors) == 1
    assert errors[0].startswith(f"{tmp_path}/a.yml: invalid YAML at line 2: ")


def test_non_utf8_file_is_an_error(tmp_path):
    (tmp_path / "latin1.md").write_bytes("Caf\xe9 ferm\xe9".encode("latin-1"))

    assert load_announcements(tmp_path, TODAY) == (
        [],
        [f"{tmp_path}/latin1.md: expected UTF-8 text, got byte 0xe9 at offset 3"],
    )


def test_read_error_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "a.md").write_text("x")

    # Root (these tests' usual user) reads mode-0 files, so the OS error is simulated.
    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)

    assert load_announcements(tmp_path, TODAY) == (
        [],
        [f"{tmp_path}/a.md: cannot read: Permission denied"],
    )


def test_missing_directory_means_no_announcements(tmp_path):
    assert load_announcements(tmp_path / "absent", TODAY) == ([], [])


def test_directory_that_is_a_file_is_an_error(tmp_path):
    (tmp_path / "announcements.d").write_text("")

    assert load_announcements(tmp_path / "announcements.d", TODAY) == (
        [],
        [f"{tmp_path}/announcements.d: cannot list announcements: Not a directory"],
    )


def test_motd_rendered_and_sanitised(tmp_path):
    (tmp_path / "motd.md").write_text("# Welcome\n\n<script>x()</script>\n\nUse **sbatch**.\n")

    assert load_motd(tmp_path / "motd.md") == (
        "<h1>Welcome</h1>\n\n<p>Use <strong>sbatch</strong>.</p>\n",
        [],
    )


def test_motd_missing_or_blank(tmp_path):
    (tmp_path / "blank.md").write_text("  \n")

    assert load_motd(tmp_path / "absent.md") == (None, [])
    assert load_motd(tmp_path / "blank.md") == (None, [])


def test_motd_bad_encoding(tmp_path):
    (tmp_path / "motd.md").write_bytes(b"\xff\xfeW\x00")

    assert load_motd(tmp_path / "motd.md") == (
        None,
        [f"{tmp_path}/motd.md: expected UTF-8 text, got byte 0xff at offset 0"],
    )
