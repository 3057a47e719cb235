"""Directory listings: paging with the cursor, sort, filter, hidden files, symbolic links, the
JSON description of a file, and a 100,000-entry directory."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ondemand_files.errors import BadRequest
from ondemand_files.listing import (
    ListingQuery,
    decode_cursor,
    encode_cursor,
    list_directory,
    parse_listing_query,
)


@pytest.fixture
def jp_server_config(files_server_config):
    return files_server_config


def make_tree(root: Path) -> Path:
    """Files of known sizes and times, a directory, a hidden file and two symbolic links."""
    for i, (name, size) in enumerate(
        [("b.txt", 30), ("A.txt", 10), ("c.dat", 20), ("Report 2024.pdf", 5)]
    ):
        (root / name).write_bytes(b"x" * size)
        os.utime(root / name, ns=(0, (1_700_000_000 + i) * 10**9))
    (root / "sub").mkdir()
    os.utime(root / "sub", ns=(0, 1_600_000_000 * 10**9))
    (root / ".hidden").write_text("h")
    (root / "link").symlink_to("sub")
    (root / "dangling").symlink_to("/nonexistent/target")
    return root


def names(listing: dict) -> list[str]:
    return [e["name"] for e in listing["entries"]]


def page_all(path: str, **kwargs) -> list[str]:
    """Every name, following next_cursor page by page."""
    seen: list[str] = []
    after = None
    while True:
        listing = list_directory(path, ListingQuery(after=after, **kwargs))
        seen += names(listing)
        if listing["next_cursor"] is None:
            return seen
        after = decode_cursor(listing["next_cursor"], kwargs.get("sort", "name"),
                              kwargs.get("order", "asc"))  # fmt: skip


def test_name_sort_is_case_insensitive_and_hides_dot_files(files_root):
    make_tree(files_root)

    listing = list_directory(str(files_root), ListingQuery())

    assert names(listing) == ["A.txt", "b.txt", "c.dat", "dangling", "link", "Report 2024.pdf",
                              "sub"]  # fmt: skip
    assert listing["total"] == 7
    assert listing["path"] == str(files_root)
    assert listing["parent"] == str(files_root.parent)
    assert listing["next_cursor"] is None


def test_entries_describe_type_size_mtime_mode_and_link_targets(files_root):
    make_tree(files_root)
    (files_root / "A.txt").chmod(0o640)

    entries = {e["name"]: e for e in list_directory(str(files_root), ListingQuery())["entries"]}

    assert entries["A.txt"] == {
        "name": "A.txt",
        "path": str(files_root / "A.txt"),
        "type": "file",
        "size": 10,
        "mtime": 1_700_000_001.0,
        "mode": "-rw-r-----",
    }
    assert entries["sub"]["type"] == "directory"
    assert entries["sub"]["mode"].startswith("d")
    assert entries["link"]["type"] == "symlink"
    assert (entries["link"]["target"], entries["link"]["target_type"]) == ("sub", "directory")
    assert (entries["dangling"]["target"], entries["dangling"]["target_type"]) == (
        "/nonexistent/target",
        None,
    )


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("size", "asc", ["Report 2024.pdf", "A.txt", "c.dat", "b.txt"]),
        ("size", "desc", ["b.txt", "c.dat", "A.txt", "Report 2024.pdf"]),
        ("mtime", "asc", ["b.txt", "A.txt", "c.dat", "Report 2024.pdf"]),
        ("name", "desc", ["Report 2024.pdf", "c.dat", "b.txt", "A.txt"]),
    ],
)
def test_sort_orders(files_root, sort, order, expected):
    make_tree(files_root)

    listing = list_directory(str(files_root), ListingQuery(sort=sort, order=order, filter="."))

    # the filter "." keeps the four files (names with a dot), not sub or the links
    assert names(listing) == expected


def test_type_sort_puts_directories_first(files_root):
    make_tree(files_root)

    listing = list_directory(str(files_root), ListingQuery(sort="type"))

    assert names(listing) == ["sub", "A.txt", "b.txt", "c.dat", "Report 2024.pdf", "dangling",
                              "link"]  # fmt: skip


def test_filter_is_case_insensitive_substring_and_hidden_shows_dot_files(files_root):
    make_tree(files_root)

    assert names(list_directory(str(files_root), ListingQuery(filter="REPORT"))) == [
        "Report 2024.pdf"
    ]
    with_hidden = list_directory(str(files_root), ListingQuery(hidden=True))
    assert names(with_hidden)[0] == ".hidden"
    assert with_hidden["total"] == 8


@pytest.mark.parametrize("sort", ["name", "size", "mtime", "type"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_cursor_pages_cover_every_entry_once(files_root, sort, order):
    for i in range(53):
        (files_root / f"f{i:02d}").write_bytes(b"x" * (i % 7))

    seen = page_all(str(files_root), limit=10, sort=sort, order=order)

    assert sorted(seen) == sorted(os.listdir(files_root))
    assert len(seen) == 53


def test_cursor_survives_deletion_and_creation_between_pages(files_root):
    for i in range(20):
        (files_root / f"f{i:02d}").touch()
    first = list_directory(str(files_root), ListingQuery(limit=5))
    assert names(first) == ["f00", "f01", "f02", "f03", "f04"]

    (files_root / "f05").unlink()  # the next page's first entry vanishes
    (files_root / "f00a").touch()  # a new entry before the cursor
    after = decode_cursor(first["next_cursor"], "name", "asc")
    second = list_directory(str(files_root), ListingQuery(limit=5, after=after))

    assert names(second) == ["f06", "f07", "f08", "f09", "f10"]


def test_cursor_of_another_sort_or_garbage_is_refused():
    cursor = encode_cursor("size", "asc", (1, "a", "a"))

    with pytest.raises(BadRequest, match="another sort"):
        decode_cursor(cursor, "name", "asc")
    for garbage in ["!!!", "e30", encode_cursor("name", "asc", (1, "a"))]:
        with pytest.raises(BadRequest, match="Invalid cursor"):
            decode_cursor(garbage, "name", "asc")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"limit": "0"}, "limit must be"),
        ({"limit": "5001"}, "limit must be"),
        ({"limit": "ten"}, "limit must be"),
        ({"sort": "owner"}, "sort must be"),
        ({"order": "up"}, "order must be"),
        ({"hidden": "yes"}, "hidden must be"),
    ],
)
def test_bad_query_arguments(args, message):
    with pytest.raises(BadRequest, match=message):
        parse_listing_query(args.get, 500)


def test_query_defaults():
    assert parse_listing_query({}.get, 250) == ListingQuery(limit=250)


async def test_json_listing_over_http_with_paging(files_client, files_root):
    for i in range(12):
        (files_root / f"file {i:02d}").touch()

    code, first = await files_client.listing(str(files_root), limit=5, sort="name")
    assert code == 200
    assert [e["name"] for e in first["entries"]] == [f"file {i:02d}" for i in range(5)]
    assert first["total"] == 12
    code, second = await files_client.listing(str(files_root), limit=5, cursor=first["next_cursor"])
    assert [e["name"] for e in second["entries"]] == [f"file {i:02d}" for i in range(5, 10)]


async def test_json_listing_errors(files_client, files_root):
    code, body = await files_client.listing(str(files_root / "missing"))
    assert (code, body) == (
        404,
        {"status": "error", "message": f"No such file or directory: {files_root}/missing"},
    )
    code, body = await files_client.listing(str(files_root), sort="owner")
    assert code == 400
    assert body["message"] == "sort must be one of name, size, mtime, type"
    code, body = await files_client.listing(str(files_root), cursor="garbage")
    assert code == 400


async def test_json_description_of_a_file(files_client, files_root):
    target = files_root / "notes.txt"
    target.write_text("hello\n")
    st = target.stat()

    code, info = await files_client.listing(str(target))

    assert code == 200
    assert info == {
        "path": str(target),
        "name": "notes.txt",
        "type": "file",
        "size": 6,
        "mtime": st.st_mtime,
        "mode": "-rw-r--r--",
        "etag": f"{st.st_mtime_ns}-6",
    }


async def test_names_that_are_not_utf8_round_trip(files_client, files_root):
    raw = os.fsencode(files_root) + b"/caf\xe9 \n%3F?#.txt"
    with open(raw, "wb") as f:
        f.write(b"data")
    name = os.fsdecode(b"caf\xe9 \n%3F?#.txt")

    code, listing = await files_client.listing(str(files_root))
    assert code == 200
    assert [e["name"] for e in listing["entries"]] == [name]
    code, info = await files_client.listing(listing["entries"][0]["path"])
    assert (code, info["size"]) == (200, 4)


@pytest.fixture(scope="module")
def huge_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("huge")
    for i in range(100_000):
        os.close(os.open(directory / f"entry-{i:06d}.dat", os.O_CREAT | os.O_WRONLY, 0o644))
    return directory


def test_first_page_of_100k_directory(huge_dir, capsys):
    times = []
    for _ in range(3):
        start = time.perf_counter()
        listing = list_directory(str(huge_dir), ListingQuery(limit=500))
        times.append(time.perf_counter() - start)

    assert listing["total"] == 100_000
    assert names(listing) == [f"entry-{i:06d}.dat" for i in range(500)]
    assert listing["next_cursor"] is not None
    with capsys.disabled():
        print(f"\n100k-entry directory, first page of 500 (function): best {min(times):.4f} s")


async def test_first_page_of_100k_directory_over_http(files_client, huge_dir, capsys):
    times = []
    for _ in range(3):
        start = time.perf_counter()
        code, listing = await files_client.listing(str(huge_dir), limit=500)
        times.append(time.perf_counter() - start)

    assert code == 200
    assert listing["total"] == 100_000
    assert listing["entries"][-1]["name"] == "entry-000499.dat"
    code, last = await files_client.listing(str(huge_dir), limit=500, order="desc")
    assert last["entries"][0]["name"] == "entry-099999.dat"
    with capsys.disabled():
        print(f"\n100k-entry directory, first page of 500 (HTTP): best {min(times):.4f} s")
