"""The JSON operations: new folder and file, rename, delete, chmod, background copy and move,
the editor's load and save; every bad input gets a clear JSON error and changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from ondemand_files.errors import BadRequest
from ondemand_files.paths import check_name


@pytest.fixture
def jp_server_config(files_server_config):
    return files_server_config


LONG_NAME = "é" * 127 + "x"  # 255 bytes of UTF-8
LEGAL_NAMES = [
    "with space",
    'quote\'s "double"',
    "<script>alert(1)<\\script>",
    "<img src=x onerror=alert(1)>",
    "new\nline",
    "tab\tand%20percent",
    LONG_NAME,
    os.fsdecode(b"latin1-caf\xe9"),
    ".hidden",
    "...",
]


@pytest.mark.parametrize("name", LEGAL_NAMES)
async def test_mkdir_and_newfile_accept_every_legal_name(files_client, files_root, name):
    folder = os.path.join(files_root, name)
    code, body = await files_client.api("POST", "mkdir", {"path": folder})
    assert (code, body) == (201, {"status": "ok", "path": folder})
    assert os.path.isdir(folder)

    new_file = os.path.join(folder, name)
    code, body = await files_client.api("POST", "newfile", {"path": new_file})
    assert (code, body) == (201, {"status": "ok", "path": new_file})
    assert os.path.getsize(new_file) == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "A name cannot be empty"),
        (".", "'.' is not allowed as a name"),
        ("..", "'..' is not allowed as a name"),
        ("x" * 256, "A name can be at most 255 bytes long, this one is 256"),
        ("é" * 128, "A name can be at most 255 bytes long, this one is 256"),
        ("nul\0byte", "A name cannot contain a NUL byte"),
        ("a/b", "A name cannot contain '/': 'a/b'"),
    ],
)
async def test_bad_names_are_refused_with_a_message(files_client, files_root, name, message):
    code, body = await files_client.api(
        "POST", "rename", {"path": str(files_root / "x"), "name": name}
    )
    assert (code, body) == (400, {"status": "error", "message": message})
    with pytest.raises(BadRequest) as excinfo:
        check_name(name)
    assert excinfo.value.message == message


async def test_mkdir_bad_inputs(files_client, files_root):
    (files_root / "exists").mkdir()
    cases = [
        ({"path": str(files_root / "exists")}, 409, f"Already exists: {files_root}/exists"),
        ({"path": str(files_root / "no/such/dir")}, 404, None),
        ({"path": "relative/dir"}, 400, "Not an absolute path: 'relative/dir'"),
        ({"path": str(files_root) + "/"}, 409, None),
        ({}, 400, "Expected an absolute path"),
        ({"path": 42}, 400, "Expected an absolute path"),
    ]
    for body, code, message in cases:
        got_code, reply = await files_client.api("POST", "mkdir", body)
        assert (got_code, reply["status"]) == (code, "error"), body
        if message:
            assert reply["message"] == message
    response = await files_client.request(
        files_client.url("api") + "/mkdir", "POST", b"{not json", {"Accept": "application/json"}
    )
    assert response.code == 400
    assert json.loads(response.body)["message"] == "Expected a JSON object as the request body"


async def test_newfile_on_existing_is_409_and_keeps_content(files_client, files_root):
    (files_root / "keep.txt").write_text("precious")

    code, body = await files_client.api("POST", "newfile", {"path": str(files_root / "keep.txt")})

    assert (code, body["message"]) == (409, f"Already exists: {files_root}/keep.txt")
    assert (files_root / "keep.txt").read_text() == "precious"


async def test_rename(files_client, files_root):
    (files_root / "old name.txt").write_text("a")
    (files_root / "taken").write_text("b")

    code, body = await files_client.api(
        "POST", "rename", {"path": str(files_root / "old name.txt"), "name": "<b>new<b>.txt"}
    )
    assert (code, body) == (200, {"status": "ok", "path": str(files_root / "<b>new<b>.txt")})
    assert (files_root / "<b>new<b>.txt").read_text() == "a"

    code, body = await files_client.api(
        "POST", "rename", {"path": str(files_root / "<b>new<b>.txt"), "name": "taken"}
    )
    assert (code, body["message"]) == (409, f"Already exists: {files_root}/taken")
    assert (files_root / "taken").read_text() == "b"
    code, body = await files_client.api(
        "POST", "rename", {"path": str(files_root / "missing"), "name": "other"}
    )
    assert code == 404


async def test_delete_files_trees_and_links_with_partial_failure(files_client, files_root):
    (files_root / "tree" / "deep").mkdir(parents=True)
    (files_root / "tree" / "deep" / "f").write_text("x")
    (files_root / "file").write_text("x")
    (files_root / "keep").mkdir()
    (files_root / "link").symlink_to(files_root / "keep")
    paths = [str(files_root / n) for n in ("tree", "file", "link", "missing")]

    code, body = await files_client.api("POST", "delete", {"paths": paths})

    assert code == 200
    assert body == {
        "status": "partial",
        "errors": [
            {
                "path": str(files_root / "missing"),
                "message": f"No such file or directory: {files_root}/missing",
            }
        ],
    }
    assert sorted(os.listdir(files_root)) == ["keep"]  # the link went, not its target


async def test_delete_refuses_root_and_home(files_client, files_root):
    home = os.path.expanduser("~")
    code, body = await files_client.api("POST", "delete", {"paths": ["/", home]})
    assert code == 200
    assert body["status"] == "partial"
    assert [e["message"] for e in body["errors"]] == ["Refusing to delete /",
                                                      f"Refusing to delete {home}"]  # fmt: skip
    assert os.path.isdir(home)
    code, body = await files_client.api("POST", "delete", {"paths": []})
    assert (code, body["message"]) == (400, "paths must be a non-empty list of absolute paths")


async def test_chmod(files_client, files_root):
    (files_root / "a").write_text("a")
    (files_root / "d").mkdir()

    code, body = await files_client.api(
        "POST", "chmod", {"paths": [str(files_root / "a"), str(files_root / "d")], "mode": "0750"}
    )

    assert (code, body) == (200, {"status": "ok", "errors": []})
    assert stat.S_IMODE((files_root / "a").stat().st_mode) == 0o750
    assert stat.S_IMODE((files_root / "d").stat().st_mode) == 0o750
    for bad in ["rwx", "0999", "77777", "", 750, "u+x"]:
        code, body = await files_client.api(
            "POST", "chmod", {"paths": [str(files_root / "a")], "mode": bad}
        )
        assert code == 400, bad
        assert body["message"].startswith("Expected an octal mode such as '0750'")
    assert stat.S_IMODE((files_root / "a").stat().st_mode) == 0o750


async def wait_for_job(files_client, job_id: str) -> dict:
    for _ in range(200):
        code, job = await files_client.api("GET", f"jobs/{job_id}")
        assert code == 200
        if job["state"] != "running":
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} still running: {job}")


def make_sources(root: Path) -> tuple[Path, Path]:
    src = root / "src"
    (src / "tree" / "inner").mkdir(parents=True)
    (src / "tree" / "inner" / "data.bin").write_bytes(os.urandom(100_000))
    (src / "tree" / "script.sh").write_text("#!/bin/sh\n")
    (src / "tree" / "script.sh").chmod(0o755)
    (src / "tree" / "link").symlink_to("script.sh")
    (src / "single.txt").write_text("single")
    (src / "clash.txt").write_text("from src")
    dest = root / "dest"
    dest.mkdir()
    (dest / "clash.txt").write_text("already here")
    return src, dest


async def test_copy_job_reports_progress_and_per_item_errors(files_client, files_root):
    src, dest = make_sources(files_root)
    paths = [str(src / n) for n in ("tree", "clash.txt", "vanished", "single.txt")]

    code, body = await files_client.api("POST", "copy", {"paths": paths, "dest": str(dest)})
    assert code == 202
    job = await wait_for_job(files_client, body["job"])

    assert job == {
        "id": body["job"],
        "op": "copy",
        "state": "done",
        "items_done": 4,
        "items_total": 4,
        "bytes_done": 100_000 + 10 + 6,
        "bytes_total": 100_000 + 10 + 6 + 8,
        "errors": [
            {"path": str(src / "clash.txt"), "message": f"Already exists: {dest}/clash.txt"},
            {
                "path": str(src / "vanished"),
                "message": f"No such file or directory: {src}/vanished",
            },
        ],
    }
    assert (dest / "tree" / "inner" / "data.bin").read_bytes() == (
        src / "tree" / "inner" / "data.bin"
    ).read_bytes()
    assert stat.S_IMODE((dest / "tree" / "script.sh").stat().st_mode) == 0o755
    assert os.readlink(dest / "tree" / "link") == "script.sh"
    assert (dest / "clash.txt").read_text() == "already here"
    assert (dest / "single.txt").read_text() == "single"
    assert sorted(os.listdir(dest)) == ["clash.txt", "single.txt", "tree"]  # no temp left


async def test_move_job_renames_and_keeps_going(files_client, files_root):
    src, dest = make_sources(files_root)
    paths = [str(src / n) for n in ("tree", "clash.txt", "single.txt")]

    code, body = await files_client.api("POST", "move", {"paths": paths, "dest": str(dest)})
    job = await wait_for_job(files_client, body["job"])

    assert (job["state"], job["items_done"], job["op"]) == ("done", 3, "move")
    assert [e["path"] for e in job["errors"]] == [str(src / "clash.txt")]
    assert sorted(os.listdir(src)) == ["clash.txt"]
    assert sorted(os.listdir(dest)) == ["clash.txt", "single.txt", "tree"]


async def test_job_where_every_item_fails_is_failed(files_client, files_root):
    src, dest = make_sources(files_root)

    code, body = await files_client.api(
        "POST", "copy", {"paths": [str(src)], "dest": str(src / "tree")}
    )
    job = await wait_for_job(files_client, body["job"])

    assert job["state"] == "failed"
    assert job["errors"] == [
        {"path": str(src), "message": f"Cannot copy a directory into itself: {src}"}
    ]


async def test_copy_move_bad_destination_and_unknown_job(files_client, files_root):
    (files_root / "f").write_text("x")
    cases = [
        ({"paths": [str(files_root / "f")], "dest": str(files_root / "f")}, 400),
        ({"paths": [str(files_root / "f")], "dest": str(files_root / "none")}, 404),
        ({"paths": [], "dest": str(files_root)}, 400),
        ({"paths": ["relative"], "dest": str(files_root)}, 400),
    ]
    for body, code in cases:
        got, reply = await files_client.api("POST", "copy", body)
        assert (got, reply["status"]) == (code, "error"), body
    code, reply = await files_client.api("GET", "jobs/nope")
    assert (code, reply) == (404, {"status": "error", "message": "No such job: nope"})


async def test_editor_load_and_save_keeps_mode(files_client, files_root):
    script = files_root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o750)

    code, doc = await files_client.api("GET", "content", path=str(script))
    assert code == 200
    st = script.stat()
    assert doc == {
        "path": str(script),
        "content": "#!/bin/sh\necho hi\n",
        "etag": f"{st.st_mtime_ns}-{st.st_size}",
        "size": st.st_size,
        "mtime": st.st_mtime,
        "mode": "-rwxr-x---",
    }

    new_content = "#!/bin/sh\necho 'héllo <world>'\n"
    code, body = await files_client.api(
        "PUT", "content", {"path": str(script), "content": new_content, "etag": doc["etag"]}
    )
    assert code == 200
    assert body["status"] == "ok"
    assert script.read_text() == new_content
    assert stat.S_IMODE(script.stat().st_mode) == 0o750
    assert body["etag"] == f"{script.stat().st_mtime_ns}-{script.stat().st_size}"
    assert sorted(os.listdir(files_root)) == ["run.sh"]  # no temp file left


async def test_editor_save_conflict_is_412_with_current_etag(files_client, files_root):
    target = files_root / "notes.md"
    target.write_text("v1\n")
    code, doc = await files_client.api("GET", "content", path=str(target))
    target.write_text("changed elsewhere, v2\n")  # another program writes meanwhile

    code, body = await files_client.api(
        "PUT", "content", {"path": str(target), "content": "mine\n", "etag": doc["etag"]}
    )

    current = f"{target.stat().st_mtime_ns}-{target.stat().st_size}"
    assert (code, body) == (
        412,
        {
            "status": "error",
            "message": f"{target} changed on disk since it was opened",
            "etag": current,
        },
    )
    assert target.read_text() == "changed elsewhere, v2\n"
    code, body = await files_client.api(
        "PUT", "content", {"path": str(target), "content": "mine\n", "etag": current}
    )
    assert code == 200
    assert target.read_text() == "mine\n"


async def test_editor_create_with_null_etag_and_refuse_existing(files_client, files_root):
    target = files_root / "new.py"
    code, body = await files_client.api(
        "PUT", "content", {"path": str(target), "content": "print(1)\n", "etag": None}
    )
    assert code == 200
    assert target.read_text() == "print(1)\n"
    code, body = await files_client.api(
        "PUT", "content", {"path": str(target), "content": "other\n", "etag": None}
    )
    assert code == 412
    assert body["etag"] == f"{target.stat().st_mtime_ns}-{target.stat().st_size}"
    code, body = await files_client.api("PUT", "content", {"path": str(target), "content": "x"})
    assert code == 400
    assert target.read_text() == "print(1)\n"


async def test_editor_refuses_binary_non_utf8_oversize_and_directories(files_client, files_root):
    (files_root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    (files_root / "latin1.txt").write_bytes(b"caf\xe9\n")
    (files_root / "big.log").write_bytes(b"x" * (5 * 1024 * 1024 + 1))

    code, body = await files_client.api("GET", "content", path=str(files_root / "image.png"))
    assert (code, body["message"]) == (
        415,
        f"{files_root}/image.png looks like a binary file; the editor opens text files only",
    )
    code, body = await files_client.api("GET", "content", path=str(files_root / "latin1.txt"))
    assert code == 415
    assert "is not UTF-8 text (byte 3)" in body["message"]
    code, body = await files_client.api("GET", "content", path=str(files_root / "big.log"))
    assert (code, body["message"]) == (
        413,
        f"{files_root}/big.log is 5 MiB; the editor opens files up to 5 MiB",
    )
    code, body = await files_client.api("GET", "content", path=str(files_root))
    assert (code, body["message"]) == (400, f"{files_root} is a directory")
    code, body = await files_client.api("GET", "content", path=str(files_root / "none"))
    assert code == 404
    code, body = await files_client.api(
        "PUT",
        "content",
        {"path": str(files_root / "too-big.txt"), "content": "y" * (5 * 1024 * 1024 + 1),
         "etag": None},
    )  # fmt: skip
    assert code == 413
    assert not (files_root / "too-big.txt").exists()


async def test_editor_saves_through_a_symlink(files_client, files_root):
    (files_root / "real.txt").write_text("a")
    (files_root / "alias.txt").symlink_to("real.txt")
    code, doc = await files_client.api("GET", "content", path=str(files_root / "alias.txt"))

    code, body = await files_client.api(
        "PUT", "content", {"path": str(files_root / "alias.txt"), "content": "b",
                           "etag": doc["etag"]},
    )  # fmt: skip

    assert code == 200
    assert os.path.islink(files_root / "alias.txt")
    assert (files_root / "real.txt").read_text() == "b"


class TestAllowlist:
    """With an allowlist, neither ``..`` nor a symbolic link leads out of it."""

    @pytest.fixture
    def files_settings(self, files_root):
        return {"allowlist": [str(files_root / "allowed")]}

    @pytest.fixture
    def tree(self, files_root):
        allowed = files_root / "allowed"
        allowed.mkdir()
        (allowed / "ok.txt").write_text("fine")
        (files_root / "outside.txt").write_text("secret")
        (allowed / "escape").symlink_to(files_root / "outside.txt")
        (allowed / "escape-dir").symlink_to(files_root)
        return allowed

    async def test_listing_and_reading_inside_works(self, files_client, tree):
        code, listing = await files_client.listing(str(tree))
        assert code == 200
        assert [e["name"] for e in listing["entries"]] == ["escape", "escape-dir", "ok.txt"]
        code, doc = await files_client.api("GET", "content", path=str(tree / "ok.txt"))
        assert (code, doc["content"]) == (200, "fine")

    @pytest.mark.parametrize(
        "relative", ["../outside.txt", "escape", "escape-dir", "escape-dir/outside.txt", ".."]
    )
    async def test_dotdot_and_symlinks_are_403(self, files_client, tree, relative):
        path = f"{tree}/{relative}"

        code, body = await files_client.listing(path)
        assert code == 403
        assert body["message"].startswith("Outside the directories this portal may access: ")
        code, body = await files_client.api("GET", "content", path=path)
        assert code == 403
        response = await files_client.request(files_client.url("fs", path))
        assert response.code == 403
        assert b"secret" not in response.body

    async def test_writes_outside_are_refused(self, files_client, tree, files_root):
        code, _ = await files_client.api("POST", "mkdir", {"path": f"{tree}/../evil"})
        assert code == 403
        code, _ = await files_client.api(
            "PUT", "content", {"path": str(tree / "escape"), "content": "x", "etag": None}
        )
        assert code == 403
        code, body = await files_client.api("POST", "delete", {"paths": [str(tree / "escape")]})
        assert body == {"status": "ok", "errors": []}  # the link itself is inside: it goes
        assert (files_root / "outside.txt").read_text() == "secret"
        code, body = await files_client.api(
            "POST", "copy", {"paths": [str(tree / "ok.txt")], "dest": str(files_root)}
        )
        assert code == 403
        assert not (files_root / "evil").exists()
