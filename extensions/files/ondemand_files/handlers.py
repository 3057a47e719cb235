"""HTML pages, downloads and raw uploads of the files extension.

``{base}files/fs/<abs path>`` is one URL for a directory's page, its JSON listing, a file's
download (or inline view, or JSON description) and a raw ``PUT`` upload; ``files/zip/`` streams
a directory as a zip and ``files/edit/`` is the editor page. Pages render ``files.html`` and
``editor.html`` (extending the dashboard's ``base.html``) with the context documented on
:meth:`DirectoryPageHandler.page_context` and :meth:`EditorPageHandler.get`.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from http.client import responses
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ondemand_dashboard.handlers import PortalPageHandler, html_safe_json

from .base import FilesHandlerMixin
from .download import (
    accel_redirect_uri,
    content_disposition,
    content_type,
    stream_zip,
    zip_name,
)
from .editor import ace_mode
from .errors import BadRequest, FilesError, error_from_oserror
from .listing import ListingQuery, file_info, list_directory, parse_listing_query
from .paths import breadcrumbs, display, parent_of
from .transfer import StreamingUpload, adopt_file

#: Bytes read per step when Python itself sends a file (no nginx in front).
DOWNLOAD_CHUNK = 1024 * 1024

#: Largest body streamed to disk without nginx (tornado's own limit is far lower).
MAX_STREAMED_UPLOAD = 1 << 40


def stat_path(path: str) -> os.stat_result:
    """``os.stat`` with errors for people."""
    try:
        return os.stat(path)
    except OSError as e:
        raise error_from_oserror(e, path) from e


def check_readable(path: str, directory: bool = False) -> None:
    """Fail with 403/404 now, before headers are sent, if ``path`` cannot be read."""
    try:
        if directory:
            os.scandir(path).close()
        else:
            os.close(os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK))
    except OSError as e:
        raise error_from_oserror(e, path) from e


class FilesPageHandler(FilesHandlerMixin, PortalPageHandler):
    """Base of the HTML pages: errors as pages for browsers, JSON for scripts and writes."""

    nav_id = "files"

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.wants_json() or self.request.method != "GET":
            self.write_json_error(status_code, **kwargs)
            return
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, FilesError) and self.current_user:
            # error.html (jupyter-server's, or ours if the templates provide one) with the
            # message: the 404.html it would otherwise pick hides what went wrong.
            self.set_status(exc.status)
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.render_page(
                "error.html",
                status_code=exc.status,
                status_message=responses.get(exc.status, "Error"),
                message=display(exc.message),
                exception=exc,
            )
            return
        super().write_error(status_code, **kwargs)

    def render_template(self, *args: Any, **namespace: Any) -> str:
        """jupyter-server's ``render_template(name, **ns)``, except that the template's name
        is positional only, so a page's context may hold ``name`` (the editor's file name)."""
        (template_name,) = args
        if "name" not in namespace:
            return str(super().render_template(template_name, **namespace))
        template = self.get_template(template_name)
        namespace.update(self.template_namespace)
        return str(template.render(**namespace))

    def page_namespace(self, path: str) -> dict[str, Any]:
        """Context shared by the Files pages: the path for display and for scripts, the API
        prefixes, and ``files_static_url(file)``, the versioned URL of one of our static
        files (``{base}static/ondemand_files/<file>?v=...``)."""
        return {
            "path": display(path),
            "path_json": html_safe_json(path),
            "api": self.api_urls(),
            "files_static_url": self.static_url,
        }


class StartHandler(FilesPageHandler):
    """``files`` and ``files/fs``: redirect to the home directory (or first favourite)."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.redirect(self.fs_url(self.files_app.start_dir()))


@web.stream_request_body
class DirectoryPageHandler(FilesPageHandler):
    """``files/fs/<abs path>``: directory page or listing, file download or description, and
    ``PUT`` of a raw body (through nginx's body file, or streamed here)."""

    upload: StreamingUpload | None = None
    body_file: str | None = None

    async def prepare(self) -> None:
        await super().prepare()
        if self._finished or self.request.method != "PUT":
            return
        await self.check_may_write()
        dest = self.resolve(self.path_args[0], follow=False)
        overwrite = self.get_query_argument("overwrite", "0") == "1"
        self.body_file = self.nginx_body_file()
        if self.body_file is None:
            self.request.connection.set_max_body_size(MAX_STREAMED_UPLOAD)
            self.upload = await self.in_thread(StreamingUpload, dest, overwrite)

    def data_received(self, chunk: bytes) -> None:
        if self.upload is not None:
            self.upload.write(chunk)

    def on_connection_close(self) -> None:
        # The client went away mid-body: leave nothing behind.
        if self.upload is not None:
            self.upload.abort()
        super().on_connection_close()

    def on_finish(self) -> None:
        if self.upload is not None:
            self.upload.abort()
        super().on_finish()

    @web.authenticated
    @authorized
    async def get(self, raw_path: str) -> None:
        path = self.resolve(raw_path)
        st = await self.in_thread(stat_path, path)
        if stat.S_ISDIR(st.st_mode):
            if self.wants_json():
                query = parse_listing_query(self._argument, self.files_app.listing_page_size)
                self.finish(await self.in_thread(list_directory, path, query))
            else:
                await self._render_directory(path)
        elif self.wants_json():
            self.finish(await self.in_thread(file_info, path))
        else:
            await self._download(path, st)

    @web.authenticated
    @authorized
    async def put(self, raw_path: str) -> None:
        dest = self.resolve(raw_path, follow=False)
        overwrite = self.get_query_argument("overwrite", "0") == "1"
        # The upload is ours now: a connection closing must not abort it under the worker.
        upload, self.upload = self.upload, None
        if self.body_file is not None:
            size = await self.in_thread(adopt_file, self.body_file, dest, overwrite=overwrite)
        elif upload is not None:
            size = await self.in_thread(upload.commit)
        else:
            raise BadRequest("No upload body")
        self.log.info("%s: uploaded %r (%d bytes)", self.current_user.username, dest, size)
        self.set_status(201)
        self.finish({"status": "ok", "path": dest, "size": size})

    def _argument(self, name: str) -> str | None:
        return self.get_query_argument(name, None, strip=False)

    async def _render_directory(self, path: str) -> None:
        app = self.files_app
        query = parse_listing_query(self._argument, app.listing_page_size)
        listing = await self.in_thread(list_directory, path, query)
        self.render_page("files.html", **self.page_context(path, listing, query))

    def page_context(
        self, path: str, listing: dict[str, Any], query: ListingQuery
    ) -> dict[str, Any]:
        """The context of ``files.html``.

        ``path``, ``parent`` and every ``name``/``label``/``path`` inside ``breadcrumbs`` and
        ``favorites`` are display strings (undecodable bytes as U+FFFD); ``*_url`` values are
        ready to use; ``path_json`` and ``listing_json`` (the first page of the JSON listing)
        are HTML-safe JSON with the exact paths, for the page's script.
        """
        app = self.files_app
        parent = parent_of(path)
        return {
            **self.page_namespace(path),
            "parent": display(parent) if parent is not None else None,
            "parent_url": self.fs_url(parent) if parent is not None else None,
            "breadcrumbs": [
                {"name": display(name), "path": display(p), "url": self.fs_url(p)}
                for name, p in breadcrumbs(path)
            ],
            "favorites": [
                {"label": display(label), "path": display(p), "url": self.fs_url(p)}
                for label, p in app.favorite_dirs()
            ],
            "listing_json": html_safe_json(listing),
            "page_size": query.limit,
            "sort": query.sort,
            "order": query.order,
            "hidden": query.hidden,
            "max_upload_chunk": app.max_upload_chunk,
            "max_edit_size": app.max_edit_size,
        }

    def _set_download_headers(self, path: str) -> None:
        view = self.get_query_argument("view", "0") == "1"
        name = os.path.basename(path)
        self.set_header("Content-Type", content_type(name, view))
        self.set_header("Content-Disposition", content_disposition(name, inline=view))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "private, no-cache")

    async def _download(self, path: str, st: os.stat_result) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise BadRequest(f"Not a regular file: {path}")
        await self.in_thread(check_readable, path)
        self._set_download_headers(path)
        if self.from_nginx:
            self.set_header("X-Accel-Redirect", accel_redirect_uri(path))
            self.finish()
            return
        # Without nginx (development, tests): send it from here, a chunk at a time.
        self.set_header("Content-Length", st.st_size)
        with open(path, "rb") as f:
            while chunk := await self.in_thread(f.read, DOWNLOAD_CHUNK):
                self.write(chunk)
                try:
                    await self.flush()
                except StreamClosedError:
                    return
        self.finish()


class ZipDownloadHandler(FilesPageHandler):
    """``files/zip/<abs dir>``: the directory as a zip, streamed while it is built."""

    @web.authenticated
    @authorized
    async def get(self, raw_path: str) -> None:
        path = self.resolve(raw_path)
        if not stat.S_ISDIR((await self.in_thread(stat_path, path)).st_mode):
            raise BadRequest(f"Not a directory: {path}")
        await self.in_thread(check_readable, path, True)
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Disposition", content_disposition(zip_name(path), False))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "private, no-cache")
        errors = await self._stream(path)
        user = self.current_user.username
        if errors is None:
            self.log.info("%s: zip of %r cancelled: the client went away", user, path)
            return
        self.log.info("%s: zip of %r sent, %d file(s) skipped", user, path, len(errors))
        self.finish()

    async def _stream(self, path: str) -> list[str] | None:
        """Build the zip in a worker thread; a small queue carries chunks to the client and
        holds the worker back when the client is slower (memory stays flat)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)
        cancelled = threading.Event()
        allowlist = self.files_app.path_allowlist

        def send(chunk: bytes | None) -> None:
            asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()

        def work() -> list[str]:
            try:
                return stream_zip(path, send, cancelled, allowlist)
            finally:
                send(None)

        future = loop.run_in_executor(self.files_app.zip_executor, work)
        while (chunk := await queue.get()) is not None:
            if cancelled.is_set():
                continue  # drain until the worker stops
            self.write(chunk)
            try:
                await self.flush()
            except StreamClosedError:
                cancelled.set()
        errors = await future
        return None if cancelled.is_set() else errors


class EditorPageHandler(FilesPageHandler):
    """``files/edit/<abs file>``: the editor page; the content is loaded by its script."""

    @web.authenticated
    @authorized
    async def get(self, raw_path: str) -> None:
        """Render ``editor.html`` with ``path``, ``name`` (also as ``file_name``), ``dir``
        (display strings),
        ``dir_url``, ``download_url``, ``path_json`` (exact path, HTML-safe JSON),
        ``ace_mode``, ``max_edit_size`` and ``api``. A directory redirects to its page."""
        path = self.resolve(raw_path)
        st = await self.in_thread(stat_path, path)
        if stat.S_ISDIR(st.st_mode):
            self.redirect(self.fs_url(path))
            return
        directory = os.path.dirname(path)
        name = os.path.basename(path)
        self.render_page(
            "editor.html",
            **self.page_namespace(path),
            name=display(name),
            file_name=display(name),
            dir=display(directory),
            dir_url=self.fs_url(directory),
            download_url=self.fs_url(path),
            ace_mode=ace_mode(name),
            max_edit_size=self.files_app.max_edit_size,
        )


default_handlers = [
    (r"/files/?", StartHandler),
    (r"/files/fs", StartHandler),
    (r"/files/fs(/.*)", DirectoryPageHandler),
    (r"/files/zip(/.*)", ZipDownloadHandler),
    (r"/files/edit(/.*)", EditorPageHandler),
]
