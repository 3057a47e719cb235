"""Reading quota and balance sources (files, ``http(s)://`` URLs) for the dashboard's warnings.

Parsing is :mod:`ondemand_hub.site.quotas` (pure). Here: a local file is parsed again only when
its modification time or size changes (a site-wide file of every user can be megabytes); a URL is
fetched with a short timeout and its answer reused for ``url_interval`` seconds. Once a URL has
an answer, a stale one is still used while a new fetch runs in the background, so only the very
first dashboard load after the PUN starts can wait for it, at most ``url_timeout`` seconds.
Every problem comes back as an error string for the log; nothing here raises to the page.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ondemand_hub.site.quotas import (
    MAX_SOURCE_BYTES,
    QuotaFileError,
    expand_source,
    is_url,
    read_source,
)

#: A parser of one source: ``(text, source) -> (entries, errors)``; raises QuotaFileError.
Parser = Callable[[bytes, str], tuple[list[Any], list[str]]]
Parsed = tuple[list[Any], list[str]]


class QuotaSources:
    """Cached reads of quota or balance sources; one instance per kind of file."""

    def __init__(
        self,
        parser: Parser,
        url_timeout: float = 2.0,
        url_interval: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.parser = parser
        self.url_timeout = url_timeout
        self.url_interval = url_interval
        self.clock = clock
        self._files: dict[str, tuple[tuple[int, int], Parsed]] = {}
        self._urls: dict[str, tuple[float, Parsed]] = {}
        self._fetches: dict[str, asyncio.Future[Parsed]] = {}

    async def load(self, sources: Sequence[str], user: str) -> Parsed:
        """Every entry of every source (``%{user}`` replaced) and every error, in order."""
        entries: list[Any] = []
        errors: list[str] = []
        for template in sources:
            source = expand_source(template, user)
            found, problems = await self._url(source) if is_url(source) else self._file(source)
            entries.extend(found)
            errors.extend(problems)
        return entries, errors

    def _parse(self, data: bytes, source: str) -> Parsed:
        try:
            return self.parser(data, source)
        except QuotaFileError as e:
            return [], [str(e)]

    def _file(self, path: str) -> Parsed:
        try:
            st = os.stat(path)
        except OSError as e:
            if not os.path.isabs(path):
                return [], [f"{path}: not an absolute path"]
            return [], [f"{path}: cannot read: {e.strerror}"]
        key = (st.st_mtime_ns, st.st_size)
        cached = self._files.get(path)
        if cached and cached[0] == key:
            return cached[1]
        try:
            parsed = self._parse(read_source(path), path)
        except QuotaFileError as e:
            return [], [str(e)]
        self._files[path] = (key, parsed)
        return parsed

    async def _url(self, url: str) -> Parsed:
        cached = self._urls.get(url)
        if cached is None or self.clock() - cached[0] >= self.url_interval:
            fetch = self._fetches.get(url)
            if fetch is None:
                fetch = self._fetches[url] = asyncio.ensure_future(self._fetch(url))
            if cached is not None:
                return cached[1]  # the stale answer now; the new one for the next page
            return await asyncio.shield(fetch)
        return cached[1]

    async def _fetch(self, url: str) -> Parsed:
        try:
            response = await AsyncHTTPClient().fetch(
                url,
                connect_timeout=self.url_timeout,
                request_timeout=self.url_timeout,
                headers={"Accept": "application/json"},
                follow_redirects=False,
            )
            if len(response.body) > MAX_SOURCE_BYTES:
                parsed: Parsed = [], [f"{url}: larger than {MAX_SOURCE_BYTES} bytes"]
            else:
                parsed = self._parse(response.body, url)
        except HTTPClientError as e:
            parsed = [], [f"{url}: HTTP {e.code}: {e.message}"]
        except (OSError, TimeoutError, ValueError) as e:
            parsed = [], [f"{url}: cannot fetch: {e}"]
        finally:
            self._fetches.pop(url, None)
        self._urls[url] = (self.clock(), parsed)
        return parsed
