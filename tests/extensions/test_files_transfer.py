"""Uploads (raw PUT, streamed or from nginx's body file; resumable sessions) and downloads
(X-Accel-Redirect, streamed, inline view, zip). Nothing partial ever appears at a destination
and nothing is left behind when an upload breaks off or the disk is full."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import subprocess
import time
import zipfile
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from ondemand_files.transfer import UploadSessions


@pytest.fixture
def jp_server_config(files_server_config):
    return files_server_config


def leftovers(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith("."))


@pytest.fixture
def tiny_fs(tmp_path):
    """A 1 MiB tmpfs: a full disk, and a file system other than tmp_path's."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


async def put(files_client, path: str, body: bytes, overwrite: bool = False, headers=None):
    query = {"overwrite": "1"} if overwrite else {}
    response = await files_client.request(
        files_client.url("fs", path, **query), "PUT", body, headers
    )
    return response.code, json.loads(response.body)


async def test_put_streams_body_into_place(files_client, files_root):
    body = os.urandom(3 * 1024 * 1024 + 17)
    target = files_root / "data set #1.bin"

    code, reply = await put(files_client, str(target), body)

    assert (code, reply) == (201, {"status": "ok", "path": str(target), "size": len(body)})
    assert target.read_bytes() == body
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert leftovers(files_root) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_put_existing_is_409_unless_overwrite_which_keeps_mode(files_client, files_root):
    target = files_root / "result.csv"
    target.write_text("old")
    target.chmod(0o600)

    code, reply = await put(files_client, str(target), b"new")
    assert (code, reply) == (409, {"status": "error", "message": f"Already exists: {target}"})
    # refused before the body is read: a large body gets the same answer at once
    code, reply = await put(files_client, str(target), os.urandom(8 * 1024 * 1024))
    assert (code, reply["message"]) == (409, f"Already exists: {target}")
    assert target.read_text() == "old"

    code, reply = await put(files_client, str(target), b"new", overwrite=True)
    assert code == 201
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert leftovers(files_root) == []


@pytest.mark.parametrize(
    ("relative", "code", "message"),
    [
        ("missing/file.txt", 404, "No such file or directory: {root}/missing"),
        ("", 409, "A directory of that name exists: {root}"),
        ("x" * 256, 400, "A name can be at most 255 bytes long, this one is 256"),
    ],
)
async def test_put_bad_targets(files_client, files_root, relative, code, message):
    path = f"{files_root}/{relative}".rstrip("/")

    got, reply = await put(files_client, path, b"data")

    assert (got, reply) == (code, {"status": "error", "message": message.format(root=files_root)})
    assert leftovers(files_root) == []
    response = await files_client.request(files_client.url("fs", "/"), "PUT", b"x")
    assert json.loads(response.body)["message"] == "A name cannot be empty"


async def test_put_on_a_full_disk_is_507_and_leaves_nothing(files_client, tiny_fs):
    target = tiny_fs / "big.bin"

    code, reply = await put(files_client, str(target), os.urandom(2 * 1024 * 1024))

    assert (code, reply) == (
        507,
        {"status": "error", "message": f"No space left on the device: {target}"},
    )
    assert os.listdir(tiny_fs) == []


async def raw_put(port: int, path_url: str, headers: dict[str, str], length: int, sent: bytes):
    """Start a PUT announcing ``length`` bytes, send ``sent``, and return the open stream."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"PUT {path_url} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {length}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1") + sent)
    await writer.drain()
    return reader, writer


async def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_interrupted_upload_leaves_no_file_and_no_temp(
    files_client, files_root, http_server_port, jp_auth_header
):
    target = files_root / "interrupted.bin"
    url = files_client.url("fs", str(target))

    _, writer = await raw_put(
        http_server_port[1], url, jp_auth_header, 10 * 1024 * 1024, os.urandom(1024 * 1024)
    )
    # the body is arriving: a hidden temporary file exists next to the target...
    await wait_until(lambda: leftovers(files_root) != [])
    assert not target.exists()
    writer.close()  # ...and the client goes away mid-body
    await wait_until(lambda: leftovers(files_root) == [])

    assert os.listdir(files_root) == []


async def test_put_with_cookies_needs_the_xsrf_token(files_client, files_root):
    page = await files_client.request(files_client.url("fs", str(files_root)))
    cookies = SimpleCookie()
    for header in page.headers.get_list("Set-Cookie"):
        cookies.load(header)
    cookie = "; ".join(f"{k}={m.value}" for k, m in cookies.items())
    url = files_client.url("fs", str(files_root / "planted.txt"))

    response = await files_client.client.fetch(
        url, method="PUT", body=b"x", headers={"Cookie": cookie}, raise_error=False
    )
    assert response.code == 403
    assert os.listdir(files_root) == []

    response = await files_client.client.fetch(
        url,
        method="PUT",
        body=b"x",
        headers={"Cookie": cookie, "X-XSRFToken": cookies["_xsrf"].value},
        raise_error=False,
    )
    assert response.code == 201


def nginx_headers(body_file: Path) -> dict[str, str]:
    return {
        "X-Ondemand-Nginx": "1",
        "X-Ondemand-Body-File": str(body_file),
        "X-Ondemand-Body-Length": str(body_file.stat().st_size),
    }


async def test_put_adopts_nginx_body_file_same_file_system(files_client, files_root, pun_tmp):
    body_file = pun_tmp / "client_body" / "0000000001"
    body_file.write_bytes(b"written by nginx")
    body_file.chmod(0o600)
    target = files_root / "from nginx.txt"

    code, reply = await put(files_client, str(target), b"", headers=nginx_headers(body_file))

    assert (code, reply) == (201, {"status": "ok", "path": str(target), "size": 16})
    assert target.read_bytes() == b"written by nginx"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert not body_file.exists()


async def test_put_copies_nginx_body_file_across_file_systems(files_client, tiny_fs, pun_tmp):
    body_file = pun_tmp / "client_body" / "0000000002"
    body_file.write_bytes(b"y" * 50_000)

    code, reply = await put(
        files_client, str(tiny_fs / "copied.bin"), b"", headers=nginx_headers(body_file)
    )

    assert code == 201
    assert (tiny_fs / "copied.bin").read_bytes() == b"y" * 50_000
    assert os.listdir(tiny_fs) == ["copied.bin"]
    assert not body_file.exists()


async def test_nginx_body_file_is_only_believed_from_nginx_and_its_directory(
    files_client, files_root, pun_tmp
):
    outside = files_root / "other-users-file"
    outside.write_text("not yours to move")
    target = files_root / "stolen"

    headers = nginx_headers(outside)
    code, reply = await put(files_client, str(target), b"", headers=headers)
    assert (code, reply["message"]) == (
        400,
        "X-Ondemand-Body-File is outside nginx's client body directory",
    )
    headers["X-Ondemand-Nginx"] = "0"
    code, reply = await put(files_client, str(target), b"", headers=headers)
    assert (code, reply["message"]) == (
        400,
        "X-Ondemand-Body-File is only accepted from the PUN's nginx",
    )
    escape = pun_tmp / "client_body" / "escape"
    escape.symlink_to(outside)
    code, reply = await put(files_client, str(target), b"", headers=nginx_headers(escape))
    assert code == 400
    assert outside.read_text() == "not yours to move"
    assert not target.exists()


async def session(files_client, path: str, size: int, overwrite: bool = False):
    return await files_client.api(
        "POST", "uploads", {"path": path, "size": size, "overwrite": overwrite}
    )


async def chunk(files_client, session_id: str, data: bytes, first: int, size: int, headers=None):
    last = first + len(data) - 1
    response = await files_client.request(
        files_client.url("api") + f"/uploads/{session_id}",
        "PUT",
        data,
        {"Content-Range": f"bytes {first}-{last}/{size}", **(headers or {})},
    )
    return response.code, json.loads(response.body)


async def test_resumable_upload_in_chunks(files_client, files_root, pun_tmp):
    data = os.urandom(300)
    target = files_root / "chunked.bin"

    code, created = await session(files_client, str(target), 300)
    assert code == 201
    sid = created["id"]
    assert created == {"id": sid, "offset": 0, "size": 300}

    assert await chunk(files_client, sid, data[:100], 0, 300) == (
        200,
        {"id": sid, "offset": 100, "size": 300, "done": False},
    )
    code, reply = await chunk(files_client, sid, data[200:], 200, 300)  # out of order
    assert (code, reply) == (
        409,
        {"status": "error", "message": "Expected the chunk starting at byte 100", "offset": 100},
    )
    assert await files_client.api("GET", f"uploads/{sid}") == (
        200,
        {"id": sid, "offset": 100, "size": 300, "path": str(target)},
    )
    assert not target.exists()
    await chunk(files_client, sid, data[100:200], 100, 300)
    code, reply = await chunk(files_client, sid, data[200:], 200, 300)

    assert (code, reply) == (
        200,
        {"id": sid, "offset": 300, "size": 300, "done": True, "path": str(target)},
    )
    assert target.read_bytes() == data
    assert leftovers(files_root) == []
    assert os.listdir(pun_tmp / "uploads") == []
    code, reply = await files_client.api("GET", f"uploads/{sid}")
    assert code == 410


async def test_chunk_cut_off_midway_resumes_from_get_offset(
    files_client, files_root, http_server_port, jp_auth_header
):
    data = os.urandom(2_000_000)
    target = files_root / "resumed.bin"
    _, created = await session(files_client, str(target), len(data))
    sid = created["id"]
    url = files_client.url("api") + f"/uploads/{sid}"

    headers = {**jp_auth_header, "Content-Range": f"bytes 0-1999999/{len(data)}"}
    _, writer = await raw_put(http_server_port[1], url, headers, len(data), data[:700_000])

    async def offset() -> int:
        return (await files_client.api("GET", f"uploads/{sid}"))[1]["offset"]

    deadline = time.monotonic() + 5
    while await offset() < 700_000 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    code, reply = await chunk(files_client, sid, data[700_000:], 700_000, len(data))
    assert (code, reply["message"]) == (409, "Another chunk of this upload is still arriving")
    writer.close()  # the connection drops
    await asyncio.sleep(0.1)
    resume_at = await offset()
    assert resume_at == 700_000
    assert not target.exists()

    code, reply = await chunk(files_client, sid, data[resume_at:], resume_at, len(data))

    assert (code, reply["done"]) == (200, True)
    assert target.read_bytes() == data


async def test_cancel_removes_staged_bytes(files_client, files_root, pun_tmp):
    _, created = await session(files_client, str(files_root / "cancelled.bin"), 1000)
    sid = created["id"]
    await chunk(files_client, sid, b"z" * 500, 0, 1000)
    assert os.path.getsize(pun_tmp / "uploads" / sid / "data") == 500

    assert await files_client.api("DELETE", f"uploads/{sid}") == (200, {"status": "ok"})

    assert os.listdir(pun_tmp / "uploads") == []
    assert not (files_root / "cancelled.bin").exists()
    code, reply = await chunk(files_client, sid, b"z" * 500, 500, 1000)
    assert (code, reply["status"]) == (410, "error")
    assert (await files_client.api("DELETE", f"uploads/{sid}"))[0] == 410
    assert (await files_client.api("GET", "uploads/not-an-id"))[0] == 410


async def test_session_bad_inputs(files_client, files_root):
    (files_root / "exists.txt").write_text("keep")
    code, reply = await session(files_client, str(files_root / "exists.txt"), 10)
    assert (code, reply["message"]) == (409, f"Already exists: {files_root}/exists.txt")
    code, reply = await session(files_client, str(files_root / "x"), -1)
    assert (code, reply["message"]) == (400, "size must be a whole number of bytes")
    code, reply = await session(files_client, str(files_root / "x"), 10**18)
    assert code == 507
    assert reply["message"].startswith(f"Not enough space in {files_root}: ")

    _, created = await session(files_client, str(files_root / "x"), 10)
    sid = created["id"]
    for header in ["bytes 0-9/11", "bytes 5-2/10", "items 0-9/10", ""]:
        response = await files_client.request(
            files_client.url("api") + f"/uploads/{sid}", "PUT", b"0123456789",
            {"Content-Range": header},
        )  # fmt: skip
        assert response.code == 400, header
    code, reply = await chunk(files_client, sid, b"0123", 0, 10, {})
    assert code == 200
    code, reply = await chunk(files_client, sid, b"4567890", 4, 10)  # 7 bytes, 6 expected
    assert code == 400
    assert (await files_client.api("GET", f"uploads/{sid}"))[1]["offset"] == 4


async def test_overwrite_session_and_empty_file(files_client, files_root):
    (files_root / "old.txt").write_text("old")
    _, created = await session(files_client, str(files_root / "old.txt"), 3, overwrite=True)
    code, reply = await chunk(files_client, created["id"], b"new", 0, 3)
    assert (code, reply["done"]) == (200, True)
    assert (files_root / "old.txt").read_text() == "new"

    code, created = await session(files_client, str(files_root / "empty"), 0)
    assert (code, created["done"], created["path"]) == (201, True, str(files_root / "empty"))
    assert (files_root / "empty").read_bytes() == b""


async def test_session_completion_conflict_keeps_session_for_retry(files_client, files_root):
    target = files_root / "raced.txt"
    _, created = await session(files_client, str(target), 4)
    target.write_text("first")  # someone else creates it meanwhile

    code, reply = await chunk(files_client, created["id"], b"mine", 0, 4)
    assert (code, reply["message"]) == (409, f"Already exists: {target}")
    assert target.read_text() == "first"

    target.unlink()
    response = await files_client.request(
        files_client.url("api") + f"/uploads/{created['id']}",
        "PUT",
        b"",
        {"Content-Range": "bytes */4"},
    )
    assert json.loads(response.body)["done"] is True
    assert target.read_text() == "mine"


async def test_session_chunk_from_nginx_body_file(files_client, files_root, pun_tmp):
    _, created = await session(files_client, str(files_root / "via-nginx.bin"), 8)
    body_file = pun_tmp / "client_body" / "0000000009"
    body_file.write_bytes(b"abcdefgh")

    response = await files_client.request(
        files_client.url("api") + f"/uploads/{created['id']}",
        "PUT",
        b"",
        {"Content-Range": "bytes 0-7/8", **nginx_headers(body_file)},
    )

    assert json.loads(response.body)["done"] is True
    assert (files_root / "via-nginx.bin").read_bytes() == b"abcdefgh"


class TestSmallChunks:
    @pytest.fixture
    def files_settings(self):
        return {"max_upload_chunk": 1024}

    async def test_chunk_over_the_limit_is_413(self, files_client, files_root):
        _, created = await session(files_client, str(files_root / "f"), 5000)

        code, reply = await chunk(files_client, created["id"], b"x" * 1025, 0, 5000)

        assert (code, reply["message"]) == (413, "A chunk can be at most 1 KiB")


def test_stale_sessions_are_removed(tmp_path, files_root):
    uploads = UploadSessions(str(tmp_path / "staging"), max_age=3600)
    old = uploads.create(str(files_root / "old"), 10, False)
    fresh = uploads.create(str(files_root / "fresh"), 10, False)
    past = time.time() - 7200
    for name in ("", "data", "session.json"):
        os.utime(os.path.join(old.directory, name), (past, past))

    assert uploads.remove_stale() == [old.id]
    assert os.listdir(tmp_path / "staging") == [fresh.id]
    assert stat.S_IMODE((tmp_path / "staging").stat().st_mode) == 0o700


NASTY = b"a b%25 ?#\n\xe9.txt"


async def test_download_through_nginx_is_an_accel_redirect(files_client, files_root):
    path = os.fsencode(files_root) + b"/" + NASTY
    with open(path, "wb") as f:
        f.write(b"payload")

    response = await files_client.request(
        files_client.url("fs", os.fsdecode(path)), headers={"X-Ondemand-Nginx": "1"}
    )

    assert response.code == 200
    assert response.body == b""
    root = str(files_root)
    assert (
        response.headers["X-Accel-Redirect"] == f"/__pun_file{root}/a%20b%2525%20%3F%23%0A%E9.txt"
    )
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="a b_25 ?#__.txt"; '
        "filename*=UTF-8''a%20b%2525%20%3F#%0A%EF%BF%BD.txt"
    )
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_download_without_nginx_is_streamed(files_client, files_root):
    data = os.urandom(3 * 1024 * 1024 + 5)
    (files_root / "blob.bin").write_bytes(data)

    response = await files_client.request(files_client.url("fs", str(files_root / "blob.bin")))

    assert response.code == 200
    assert response.body == data
    assert "X-Accel-Redirect" not in response.headers
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"blob.bin\"; filename*=UTF-8''blob.bin"
    )


@pytest.mark.parametrize(
    ("name", "expected_type"),
    [
        ("page.html", "text/plain; charset=utf-8"),
        ("drawing.svg", "text/plain; charset=utf-8"),
        ("app.js", "text/plain; charset=utf-8"),
        ("data.xml", "text/plain; charset=utf-8"),
        ("notes", "text/plain; charset=utf-8"),
        ("photo.png", "image/png"),
        ("paper.pdf", "application/pdf"),
    ],
)
async def test_inline_view_never_serves_active_content(
    files_client, files_root, name, expected_type
):
    (files_root / name).write_bytes(b"<script>alert(1)</script>")

    response = await files_client.request(
        files_client.url("fs", str(files_root / name), view="1"),
        headers={"X-Ondemand-Nginx": "1"},
    )

    assert response.headers["Content-Type"] == expected_type
    assert response.headers["Content-Disposition"].startswith(f'inline; filename="{name}"')
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_download_of_missing_file_is_a_404_page(files_client, files_root):
    response = await files_client.request(files_client.url("fs", str(files_root / "<none>")))

    assert response.code == 404
    assert response.headers["Content-Type"].startswith("text/html")
    assert f"No such file or directory: {files_root}/&lt;none&gt;".encode() in response.body
    assert b"<none>" not in response.body


async def test_zip_of_a_directory(files_client, files_root):
    project = files_root / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('hi')\n")
    (project / "empty").mkdir()
    (project / "big.bin").write_bytes(os.urandom(600_000))
    (project / "dangling").symlink_to("/nonexistent")
    (project / "loop-dir").symlink_to(files_root)
    os.mkfifo(project / "pipe")
    with open(os.fsencode(project) + b"/caf\xe9.txt", "wb") as f:
        f.write(b"latin")

    response = await files_client.request(files_client.url("zip", str(project)))

    assert response.code == 200
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"project.zip\"; filename*=UTF-8''project.zip"
    )
    zf = zipfile.ZipFile(io.BytesIO(response.body))
    assert sorted(zf.namelist()) == [
        "ERRORS.txt",
        "project/big.bin",
        "project/caf\ufffd.txt",
        "project/empty/",
        "project/src/main.py",
    ]
    assert zf.read("project/src/main.py") == b"print('hi')\n"
    assert zf.read("project/big.bin") == (project / "big.bin").read_bytes()
    assert zf.read("ERRORS.txt").decode().splitlines() == [
        "Not in this zip:",
        f"{project}/loop-dir: link to a directory, skipped",
        f"{project}/dangling: No such file or directory",
        f"{project}/pipe: not a regular file, skipped",
    ]


async def test_zip_errors_before_streaming(files_client, files_root):
    (files_root / "file").write_text("x")

    response = await files_client.request(files_client.url("zip", str(files_root / "file")))
    assert response.code == 400
    response = await files_client.request(
        files_client.url("zip", str(files_root / "none")), headers={"Accept": "application/json"}
    )
    assert (response.code, json.loads(response.body)["status"]) == (404, "error")


async def test_full_disk_elsewhere_is_507_and_leaves_nothing_partial(
    files_client, files_root, tiny_fs
):
    code, reply = await session(files_client, str(tiny_fs / "huge.iso"), 2 * 1024 * 1024)
    assert (code, reply["status"]) == (507, "error")
    assert reply["message"].startswith(f"Not enough space in {tiny_fs}: 2 MiB needed, ")

    notes = tiny_fs / "notes.txt"
    notes.write_text("old notes\n")
    (tiny_fs / "filler").write_bytes(b"f" * (1024 * 1024 - 64 * 1024))
    code, doc = await files_client.api("GET", "content", path=str(notes))
    code, reply = await files_client.api(
        "PUT", "content", {"path": str(notes), "content": "n" * 200_000, "etag": doc["etag"]}
    )
    assert (code, reply["message"]) == (507, f"No space left on the device: {notes}")
    assert notes.read_text() == "old notes\n"

    (files_root / "big.bin").write_bytes(b"b" * 200_000)
    code, body = await files_client.api(
        "POST", "copy", {"paths": [str(files_root / "big.bin")], "dest": str(tiny_fs)}
    )
    for _ in range(200):
        code, job = await files_client.api("GET", f"jobs/{body['job']}")
        if job["state"] != "running":
            break
        await asyncio.sleep(0.02)
    assert job["state"] == "failed"
    assert job["errors"][0]["message"].startswith("No space left on the device: ")
    assert sorted(os.listdir(tiny_fs)) == ["filler", "notes.txt"]


async def test_zip_worker_stops_when_the_client_goes_away(
    files_client, files_root, http_server_port, jp_auth_header, caplog
):
    (files_root / "big").mkdir()
    (files_root / "big" / "random.bin").write_bytes(os.urandom(40 * 1024 * 1024))
    reader, writer = await asyncio.open_connection("127.0.0.1", http_server_port[1])
    auth = "".join(f"{k}: {v}\r\n" for k, v in jp_auth_header.items())
    url = files_client.url("zip", str(files_root / "big"))
    writer.write(f"GET {url} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n".encode())
    assert (await reader.read(4096)).startswith(b"HTTP/1.1 200 OK")

    writer.close()

    def cancelled() -> bool:
        return any("cancelled: the client went away" in r.getMessage() for r in caplog.records)

    await wait_until(cancelled)


async def test_download_of_a_fifo_is_refused(files_client, files_root):
    os.mkfifo(files_root / "pipe")

    response = await files_client.request(
        files_client.url("fs", str(files_root / "pipe")), headers={"X-Ondemand-Nginx": "1"}
    )

    assert response.code == 400
    assert "X-Accel-Redirect" not in response.headers
