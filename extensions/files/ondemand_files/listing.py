"""Directory listings, one page at a time, and the JSON description of a file.

A listing never builds the entries of a whole directory: for the name sort only the names are
read (``os.listdir``) and only the page's entries are ``lstat``-ed; the type sort reads the
directory entries' types (no ``stat``); size and modification time need one ``lstat`` per
entry. The page is picked with a heap (O(n log limit)) instead of sorting everything.

Pages are chained by an opaque cursor holding the sort key of the last entry returned, so an
entry created or deleted between two requests neither repeats nor hides another one.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import heapq
import json
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest, error_from_oserror
from .paths import parent_of

SORTS = ("name", "size", "mtime", "type")
ORDERS = ("asc", "desc")
MAX_LIMIT = 5000

#: Order of the ``type`` sort: directories first, as file managers do.
TYPE_RANK = {"directory": 0, "file": 1, "symlink": 2, "other": 3}

SortKey = tuple[Any, ...]

#: Sorted keys of recently paged directories, so page N+1 of a 100,000-entry directory is a
#: binary search, not another read and sort. An entry is valid while the directory's mtime is
#: unchanged (an entry created, deleted or renamed changes it) and for at most CACHE_SECONDS
#: (a file's new size or mtime does not touch its directory).
CACHE_SECONDS = 30.0
CACHE_DIRECTORIES = 8
_cache: OrderedDict[tuple[Any, ...], tuple[float, list[SortKey]]] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ListingQuery:
    """What page of a directory to list; see :func:`parse_listing_query`."""

    limit: int = 500
    sort: str = "name"
    order: str = "asc"
    filter: str = ""
    hidden: bool = False
    after: SortKey | None = None


def parse_listing_query(arg: Callable[[str], str | None], default_limit: int) -> ListingQuery:
    """Build a :class:`ListingQuery` from request arguments (``arg(name)`` returns the value
    or None); :class:`BadRequest` names the first bad argument."""
    limit_text = arg("limit")
    try:
        limit = default_limit if limit_text in (None, "") else int(limit_text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    sort = arg("sort") or "name"
    if sort not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)}")
    order = arg("order") or "asc"
    if order not in ORDERS:
        raise BadRequest("order must be asc or desc")
    hidden = arg("hidden") or "0"
    if hidden not in ("0", "1", "true", "false"):
        raise BadRequest("hidden must be 1 or 0")
    cursor = arg("cursor")
    return ListingQuery(
        limit=limit,
        sort=sort,
        order=order,
        filter=arg("filter") or "",
        hidden=hidden in ("1", "true"),
        after=decode_cursor(cursor, sort, order) if cursor else None,
    )


def encode_cursor(sort: str, order: str, key: SortKey) -> str:
    """The opaque cursor that continues after ``key``."""
    data = json.dumps({"s": sort, "o": order, "k": list(key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, sort: str, order: str) -> SortKey:
    """The sort key a cursor continues after; :class:`BadRequest` when it is malformed or was
    made for another sort or order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        key = tuple(data["k"])
        same_query = data["s"] == sort and data["o"] == order
    except (binascii.Error, ValueError, TypeError, KeyError) as e:
        raise BadRequest("Invalid cursor: start again from the first page") from e
    if not same_query:
        raise BadRequest("The cursor belongs to another sort order: start again")
    expected = (str, str) if sort == "name" else (int, str, str)
    if len(key) != len(expected) or not all(
        type(v) is t for v, t in zip(key, expected, strict=True)
    ):
        raise BadRequest("Invalid cursor: start again from the first page")
    return key


def entry_type(mode: int) -> str:
    """``file``, ``directory``, ``symlink`` or ``other`` for an ``st_mode``."""
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def etag_of(st: os.stat_result) -> str:
    """The version tag of a file's content as the editor compares it."""
    return f"{st.st_mtime_ns}-{st.st_size}"


def _describe(path: str, st: os.stat_result) -> dict[str, Any]:
    return {
        "name": os.path.basename(path) or "/",
        "path": path,
        "type": entry_type(st.st_mode),
        "size": st.st_size,
        "mtime": st.st_mtime,
        "mode": stat.filemode(st.st_mode),
    }


def describe_entry(directory: str, name: str) -> dict[str, Any] | None:
    """The listing entry of ``name`` in ``directory``; None if it vanished meanwhile.

    In a directory that may be read but not searched (mode r--), only names are known: such
    entries have type ``other`` and null size, mtime and mode.
    """
    path = os.path.join(directory, name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError:
        unknown = {"type": "other", "size": None, "mtime": None, "mode": None}
        return {"name": name, "path": path, **unknown}
    entry = _describe(path, st)
    if stat.S_ISLNK(st.st_mode):
        try:
            entry["target"] = os.readlink(path)
        except OSError:
            entry["target"] = None
        try:
            entry["target_type"] = entry_type(os.stat(path).st_mode)
        except OSError:  # dangling, a loop, or not ours to follow
            entry["target_type"] = None
    return entry


def file_info(path: str) -> dict[str, Any]:
    """``{"path", "name", "type", "size", "mtime", "mode", "etag"}`` of ``path`` (a symbolic
    link is described by its target)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise error_from_oserror(e, path) from e
    return {**_describe(path, st), "etag": etag_of(st)}


def _visible(query: ListingQuery) -> Callable[[str], bool]:
    needle = query.filter.casefold()

    def visible(name: str) -> bool:
        if not query.hidden and name.startswith("."):
            return False
        return not needle or needle in name.casefold()

    return visible


def _dirent_rank(entry: os.DirEntry[str]) -> int:
    # DirEntry answers these from d_type, without a system call, on Linux file systems.
    if entry.is_symlink():
        return TYPE_RANK["symlink"]
    if entry.is_dir(follow_symlinks=False):
        return TYPE_RANK["directory"]
    if entry.is_file(follow_symlinks=False):
        return TYPE_RANK["file"]
    return TYPE_RANK["other"]


def _sort_keys(path: str, query: ListingQuery) -> list[SortKey]:
    """One sort key per visible entry, ending with the name (unique within a directory)."""
    visible = _visible(query)
    if query.sort == "name":
        return [(n.casefold(), n) for n in os.listdir(path) if visible(n)]
    keys: list[SortKey] = []
    with os.scandir(path) as entries:
        for entry in entries:
            name = entry.name
            if not visible(name):
                continue
            if query.sort == "type":
                keys.append((_dirent_rank(entry), name.casefold(), name))
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # deleted while we read the directory
            value = st.st_size if query.sort == "size" else st.st_mtime_ns
            keys.append((value, name.casefold(), name))
    return keys


def _sorted_keys(path: str, query: ListingQuery) -> tuple[list[SortKey], bool]:
    """All sort keys of ``path`` in ascending order (from the cache when still valid), and
    whether they came from the cache."""
    ident = (path, os.stat(path).st_mtime_ns, query.sort, query.filter, query.hidden)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(ident)
        if hit and now - hit[0] < CACHE_SECONDS:
            _cache.move_to_end(ident)
            return hit[1], True
    keys = sorted(_sort_keys(path, query))
    with _cache_lock:
        _cache[ident] = (now, keys)
        while len(_cache) > CACHE_DIRECTORIES:
            _cache.popitem(last=False)
    return keys, False


def _page_after(path: str, query: ListingQuery) -> tuple[list[SortKey], int]:
    """The page after the cursor from the sorted keys: (up to limit + 1 keys, total)."""
    keys, _ = _sorted_keys(path, query)
    assert query.after is not None
    if query.order == "desc":
        end = bisect.bisect_left(keys, query.after)
        return keys[max(0, end - query.limit - 1) : end][::-1], len(keys)
    start = bisect.bisect_right(keys, query.after)
    return keys[start : start + query.limit + 1], len(keys)


def _first_page(path: str, query: ListingQuery) -> tuple[list[SortKey], int]:
    """The first page without sorting everything (a heap): (up to limit + 1 keys, total)."""
    keys = _sort_keys(path, query)
    pick = heapq.nlargest if query.order == "desc" else heapq.nsmallest
    return pick(query.limit + 1, keys), len(keys)


def list_directory(path: str, query: ListingQuery) -> dict[str, Any]:
    """One page of the listing of ``path``, sorted, filtered and chained by ``next_cursor``.

    Returns ``{"path", "parent", "total", "next_cursor", "entries"}``, where ``total``
    counts the entries that pass the hidden/filter settings. Raises a
    :class:`~.errors.FilesError` (403, 404...) when the directory cannot be read.
    """
    try:
        if query.after is None:
            page, total = _first_page(path, query)
        else:
            page, total = _page_after(path, query)
    except OSError as e:
        raise error_from_oserror(e, path) from e
    more = len(page) > query.limit
    page = page[: query.limit]
    entries = [e for e in (describe_entry(path, key[-1]) for key in page) if e is not None]
    return {
        "path": path,
        "parent": parent_of(path),
        "total": total,
        "next_cursor": encode_cursor(query.sort, query.order, page[-1]) if more else None,
        "entries": entries,
    }
