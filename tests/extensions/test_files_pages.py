"""The Files pages (the context the templates get), authentication, configuration, and the
pure helpers behind URLs, names and headers."""

from __future__ import annotations

import json
import os
import pwd
import re

import pytest
from traitlets import TraitError

from ondemand_dashboard.handlers import html_safe_json
from ondemand_files import FilesExtensionApp
from ondemand_files.download import content_disposition, content_type
from ondemand_files.editor import ace_mode, format_size
from ondemand_files.errors import BadRequest
from ondemand_files.fsops import parse_mode, place, rename_noreplace
from ondemand_files.paths import Allowlist, expand_favorite, parse_path, quote_path

USER = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def jp_server_config(files_server_config):
    return files_server_config


@pytest.fixture
def files_settings(files_root):
    return {
        "favorites": [
            "$HOME",
            f"{files_root}/${{USER}}-scratch",
            "/nonexistent/$USER",
            "relative/$USER",
            "${HOME}",
        ],
        "listing_page_size": 3,
        "max_upload_chunk": "8M",
    }


def context(response) -> dict:
    html = response.body.decode()
    match = re.search(r'<script id="context" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


async def test_start_page_redirects_to_home(files_client, jp_base_url):
    home = os.path.expanduser("~")
    for url in (f"{jp_base_url}files", f"{jp_base_url}files/", f"{jp_base_url}files/fs"):
        response = await files_client.request(url)
        assert response.code == 302
        assert response.headers["Location"] == f"{jp_base_url}files/fs{quote_path(home)}"


async def test_directory_page_context(files_client, files_root, jp_base_url):
    (files_root / f"{USER}-scratch").mkdir()
    for name in ("b", "a", "d", "c"):
        (files_root / name).touch()
    fs = f"{jp_base_url}files/fs"

    response = await files_client.request(files_client.url("fs", str(files_root)))

    assert response.code == 200
    ctx = context(response)
    home = os.path.expanduser("~")
    listing = ctx.pop("listing")
    parts = str(files_root).strip("/").split("/")
    assert ctx == {
        "path": str(files_root),
        "parent": str(files_root.parent),
        "parent_url": fs + quote_path(str(files_root.parent)),
        "breadcrumbs": [{"name": "/", "path": "/", "url": fs + "/"}]
        + [
            {
                "name": part,
                "path": "/" + "/".join(parts[: i + 1]),
                "url": fs + quote_path("/" + "/".join(parts[: i + 1])),
            }
            for i, part in enumerate(parts)
        ],
        "favorites": [
            {"label": "Home", "path": home, "url": fs + quote_path(home)},
            {
                "label": f"{files_root}/{USER}-scratch",
                "path": f"{files_root}/{USER}-scratch",
                "url": fs + quote_path(f"{files_root}/{USER}-scratch"),
            },
        ],
        "page_size": 3,
        "sort": "name",
        "order": "asc",
        "hidden": False,
        "api": {
            "fs": fs,
            "api": f"{jp_base_url}files/api",
            "zip": f"{jp_base_url}files/zip",
            "edit": f"{jp_base_url}files/edit",
        },
        "max_upload_chunk": 8 * 1024 * 1024,
        "max_edit_size": 5 * 1024 * 1024,
        "nav_id": "files",
        "path_json": str(files_root),
    }
    assert [e["name"] for e in listing["entries"]] == ["a", "b", "c"]
    assert listing["total"] == 5
    assert listing["next_cursor"]


async def test_page_honours_listing_arguments(files_client, files_root):
    (files_root / ".hidden").touch()
    (files_root / "big").write_bytes(b"x" * 10)

    response = await files_client.request(
        files_client.url("fs", str(files_root), sort="size", order="desc", hidden="1")
    )

    ctx = context(response)
    assert (ctx["sort"], ctx["order"], ctx["hidden"]) == ("size", "desc", True)
    assert [e["name"] for e in ctx["listing"]["entries"]] == ["big", ".hidden"]


async def test_page_of_hostile_and_non_utf8_names_is_escaped(files_client, files_root):
    raw_dir = os.fsencode(files_root) + b"/caf\xe9 <dir>"
    os.mkdir(raw_dir)
    (files_root / "x").touch()
    os.mknod(raw_dir + b"/<script>alert(1)<\\script>")
    path = os.fsdecode(raw_dir)

    response = await files_client.request(files_client.url("fs", path))

    assert response.code == 200
    html = response.body.decode()
    assert "<script>alert" not in html
    assert f"<p>{files_root}/caf\ufffd &lt;dir&gt;</p>" in html
    ctx = context(response)
    assert ctx["path"] == f"{files_root}/caf\ufffd <dir>"
    assert ctx["path_json"] == path  # exact, for the script
    assert ctx["breadcrumbs"][-1] == {
        "name": "caf\ufffd <dir>",
        "path": f"{files_root}/caf\ufffd <dir>",
        "url": files_client.url("fs", path),
    }
    assert ctx["breadcrumbs"][-1]["url"].endswith("/caf%E9%20%3Cdir%3E")


async def test_editor_page_context(files_client, files_root, jp_base_url):
    script = files_root / "job.sbatch"
    script.write_text("#!/bin/bash\n")

    response = await files_client.request(files_client.url("edit", str(script)))

    assert response.code == 200
    ctx = context(response)
    assert ctx.pop("css").startswith(f"{jp_base_url}static/ondemand_files/files.css")
    assert ctx == {
        "path": str(script),
        "name": "job.sbatch",
        "file_name": "job.sbatch",
        "dir": str(files_root),
        "dir_url": f"{jp_base_url}files/fs{quote_path(str(files_root))}",
        "download_url": f"{jp_base_url}files/fs{quote_path(str(script))}",
        "ace_mode": "sh",
        "max_edit_size": 5 * 1024 * 1024,
        "api": {
            "fs": f"{jp_base_url}files/fs",
            "api": f"{jp_base_url}files/api",
            "zip": f"{jp_base_url}files/zip",
            "edit": f"{jp_base_url}files/edit",
        },
        "path_json": str(script),
    }


async def test_editor_page_of_a_directory_redirects_and_missing_is_404(files_client, files_root):
    response = await files_client.request(files_client.url("edit", str(files_root)))
    assert response.code == 302
    assert response.headers["Location"].endswith(f"files/fs{quote_path(str(files_root))}")

    response = await files_client.request(files_client.url("edit", str(files_root / "none")))
    assert response.code == 404
    assert f"No such file or directory: {files_root}/none".encode() in response.body


async def test_everything_requires_authentication(files_client, files_root):
    anonymous = files_client.client
    for kind in ("fs", "zip", "edit"):
        response = await anonymous.fetch(
            files_client.url(kind, str(files_root)), follow_redirects=False, raise_error=False
        )
        assert response.code == 302, kind
        assert "/login" in response.headers["Location"]
    response = await anonymous.fetch(
        files_client.url("fs", str(files_root / "x")), method="PUT", body=b"x", raise_error=False
    )
    assert response.code == 403
    response = await anonymous.fetch(
        files_client.url("api") + "/mkdir",
        method="POST",
        body=json.dumps({"path": str(files_root / "d")}),
        raise_error=False,
    )
    assert response.code == 403
    assert os.listdir(files_root) == []


def test_configurable_traits_have_help():
    traits = FilesExtensionApp.class_own_traits(config=True)

    assert set(traits) == {
        "favorites",
        "allowlist",
        "max_edit_size",
        "listing_page_size",
        "upload_staging_dir",
        "upload_session_max_age",
        "max_upload_chunk",
    }
    assert [name for name, trait in traits.items() if not (trait.help or "").strip()] == []


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [
        ("listing_page_size", 0, "expected 1 to 5000, got 0"),
        ("allowlist", ["relative"], "expected absolute paths, got 'relative'"),
        ("upload_staging_dir", "tmp", "expected an absolute path, got 'tmp'"),
        ("max_edit_size", 0, "expected a positive number, got 0"),
    ],
)
def test_bad_configuration_is_refused(trait, value, message):
    with pytest.raises(TraitError, match=re.escape(message)):
        FilesExtensionApp(**{trait: value})


def test_configuration_defaults(monkeypatch):
    monkeypatch.delenv("ONDEMAND_HUB_PUN_TMP", raising=False)
    app = FilesExtensionApp(max_edit_size="1.5M")
    assert app.upload_staging_dir == os.path.expanduser("~/.cache/ondemand-hub/uploads")
    assert app.max_edit_size == 1572864
    assert app.favorites == ["$HOME"]
    monkeypatch.setenv("ONDEMAND_HUB_PUN_TMP", "/run/pun/tmp")
    assert FilesExtensionApp().upload_staging_dir == "/run/pun/tmp/uploads"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/", "/"),
        ("//etc//passwd/", "/etc/passwd"),
        ("/a/./b/../c", "/a/c"),
        ("/../..", "/"),
        ("/with space/%41", "/with space/%41"),
    ],
)
def test_parse_path(raw, expected):
    assert parse_path(raw) == expected


@pytest.mark.parametrize("raw", ["", "relative", "/nul\0", None, 3, "/\ud800"])
def test_parse_path_refuses(raw):
    with pytest.raises(BadRequest):
        parse_path(raw)


def test_quote_path_encodes_every_byte_but_unreserved_and_slash():
    path = os.fsdecode(b"/a b/%/?#/\n/\xe9\xff/~_.-/\xc3\xa9")
    assert quote_path(path) == "/a%20b/%25/%3F%23/%0A/%E9%FF/~_.-/%C3%A9"


def test_allowlist_real_path_semantics(tmp_path):
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    (tmp_path / "alias").symlink_to(tmp_path / "root")
    allow = Allowlist.from_paths([str(tmp_path / "alias")])  # a root that is a link counts

    assert allow.allows(str(tmp_path / "root" / "sub"))
    assert allow.allows(str(tmp_path / "alias" / "sub" / "new-file"))
    assert not allow.allows(str(tmp_path / "root" / "out"))
    assert allow.allows(str(tmp_path / "root" / "out"), follow=False)  # the link itself
    assert not allow.allows(str(tmp_path / "rootless"))  # prefix of a root's name
    assert not allow.allows("/")
    assert Allowlist().allows("/etc")


def test_expand_favorite():
    assert expand_favorite("/scratch/$USER", "bob", "/home/bob") == "/scratch/bob"
    assert expand_favorite("${HOME}/data", "bob", "/home/bob") == "/home/bob/data"
    assert expand_favorite("$USERNAME/$HOMEDIR", "bob", "/h") is None
    assert expand_favorite("/p/$USERNAME", "bob", "/h") == "/p/$USERNAME"
    assert expand_favorite("relative", "bob", "/h") is None


@pytest.mark.parametrize(
    ("name", "inline", "expected"),
    [
        ("report.pdf", False, "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        (
            'naïve "q" \\ x.txt',
            True,
            'inline; filename="na_ve _q_ _ x.txt"; '
            "filename*=UTF-8''na%C3%AFve%20%22q%22%20%5C%20x.txt",
        ),
    ],
)
def test_content_disposition(name, inline, expected):
    assert content_disposition(name, inline) == expected


def test_content_type():
    assert content_type("page.html", view=False) == "text/html"
    assert content_type("page.html", view=True) == "text/plain; charset=utf-8"
    assert content_type("image.svg", view=True) == "text/plain; charset=utf-8"
    assert content_type("image.jpg", view=True) == "image/jpeg"
    assert content_type("noext", view=False) == "application/octet-stream"


def test_html_safe_json_cannot_close_a_script_element():
    text = html_safe_json({"name": "</script><script>alert('x')&", "raw": "\udce9"})
    assert "<" not in text and ">" not in text and "&" not in text and "'" not in text
    assert json.loads(text) == {"name": "</script><script>alert('x')&", "raw": "\udce9"}


def test_parse_mode_and_ace_mode_and_sizes():
    assert [parse_mode(m) for m in ("0750", "750", "0o644", "2770")] == [
        0o750, 0o750, 0o644, 0o2770
    ]  # fmt: skip
    assert [ace_mode(n) for n in ("a.PY", "Makefile", "x.tar.gz", "README", "job.slurm")] == [
        "python", "makefile", "text", "text", "sh"
    ]  # fmt: skip
    assert [format_size(n) for n in (12, 1536, 5 * 1024**2)] == ["12 bytes", "1.5 KiB", "5 MiB"]


def test_rename_noreplace_never_clobbers(tmp_path):
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    (tmp_path / "d").mkdir()
    (tmp_path / "empty").mkdir()

    with pytest.raises(FileExistsError):
        rename_noreplace(str(tmp_path / "a"), str(tmp_path / "b"))
    with pytest.raises(FileExistsError):
        rename_noreplace(str(tmp_path / "d"), str(tmp_path / "empty"))  # rename(2) would
    rename_noreplace(str(tmp_path / "a"), str(tmp_path / "c"))

    assert (tmp_path / "b").read_text() == "b"
    assert (tmp_path / "c").read_text() == "a"
    assert (tmp_path / "d").is_dir()


def test_place_replaces_only_when_asked(tmp_path):
    for name in ("new", "new2", "old"):
        (tmp_path / name).write_text(name)

    with pytest.raises(FileExistsError):
        place(str(tmp_path / "new"), str(tmp_path / "old"), overwrite=False)
    assert (tmp_path / "old").read_text() == "old"
    place(str(tmp_path / "new2"), str(tmp_path / "old"), overwrite=True)
    assert (tmp_path / "old").read_text() == "new2"
