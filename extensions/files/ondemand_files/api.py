"""JSON API of the files extension: ``{base}files/api/...`` (see docs/files-api.md).

Replies are JSON objects; errors are ``{"status": "error", "message": ...}`` with the codes of
the spec (400 bad input, 403, 404, 409 exists, 410 upload session gone, 412 changed on disk,
413, 415, 507 disk full).
"""

from __future__ import annotations

import json
import stat
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ondemand_dashboard.api import PortalAPIHandler

from .base import FilesHandlerMixin
from .editor import read_text, save_text
from .errors import BadRequest, Conflict, FilesError
from .fsops import (
    change_mode,
    delete_entry,
    for_each_path,
    make_directory,
    make_empty_file,
    parse_mode,
    rename_entry,
)
from .handlers import stat_path
from .paths import parse_path
from .transfer import (
    ChunkWriter,
    UploadSession,
    check_chunk_size,
    parse_content_range,
)


class FilesAPIHandler(FilesHandlerMixin, PortalAPIHandler):
    """Base of the Files JSON handlers."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.write_json_error(status_code, **kwargs)

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object; 400 otherwise."""
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest("Expected a JSON object as the request body") from e
        if not isinstance(body, dict):
            raise BadRequest("Expected a JSON object as the request body")
        return body

    def path_list(self, body: dict[str, Any]) -> list[str]:
        """The normalised ``paths`` of the body (not yet checked against the allowlist)."""
        paths = body.get("paths")
        if not isinstance(paths, list) or not paths:
            raise BadRequest("paths must be a non-empty list of absolute paths")
        return [parse_path(p) for p in paths]

    def batch_reply(self, errors: list[dict[str, str]]) -> None:
        """``{"status": "ok"|"partial", "errors"}`` of delete and chmod."""
        self.finish({"status": "partial" if errors else "ok", "errors": errors})


class MkdirHandler(FilesAPIHandler):
    """``POST files/api/mkdir {"path"}``: a new directory."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        path = self.resolve(self.json_body().get("path"), follow=False)
        await self.in_thread(make_directory, path)
        self.log.info("%s: created directory %r", self.current_user.username, path)
        self.set_status(201)
        self.finish({"status": "ok", "path": path})


class NewFileHandler(FilesAPIHandler):
    """``POST files/api/newfile {"path"}``: a new empty file."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        path = self.resolve(self.json_body().get("path"), follow=False)
        await self.in_thread(make_empty_file, path)
        self.log.info("%s: created file %r", self.current_user.username, path)
        self.set_status(201)
        self.finish({"status": "ok", "path": path})


class RenameHandler(FilesAPIHandler):
    """``POST files/api/rename {"path", "name"}``: a new name in the same directory."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        path = self.resolve(body.get("path"), follow=False)
        new_path = await self.in_thread(rename_entry, path, body.get("name"))
        self.log.info("%s: renamed %r to %r", self.current_user.username, path, new_path)
        self.finish({"status": "ok", "path": new_path})


class DeleteHandler(FilesAPIHandler):
    """``POST files/api/delete {"paths"}``: delete files and whole directories (never ``/``
    or the home directory itself)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        paths = self.path_list(self.json_body())
        protected = frozenset({self.files_app.home_dir})

        def delete(path: str) -> None:
            self.files_app.path_allowlist.check(path, follow=False)
            delete_entry(path, protected)

        errors = await self.in_thread(for_each_path, paths, delete)
        self.log.info(
            "%s: deleted %d of %d path(s)",
            self.current_user.username,
            len(paths) - len(errors),
            len(paths),
        )
        self.batch_reply(errors)


class ChmodHandler(FilesAPIHandler):
    """``POST files/api/chmod {"paths", "mode": "0750"}``: change permissions."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        paths = self.path_list(body)
        mode = parse_mode(body.get("mode"))

        def chmod(path: str) -> None:
            change_mode(self.files_app.path_allowlist.check(path), mode)

        errors = await self.in_thread(for_each_path, paths, chmod)
        self.log.info("%s: chmod %o on %d path(s)", self.current_user.username, mode, len(paths))
        self.batch_reply(errors)


class TransferJobHandler(FilesAPIHandler):
    """``POST files/api/copy`` and ``files/api/move`` ``{"paths", "dest"}``: start a
    background job; 202 ``{"job": id}``."""

    @web.authenticated
    @authorized
    async def post(self, op: str) -> None:
        body = self.json_body()
        paths = self.path_list(body)
        dest = self.resolve(body.get("dest"))
        if not stat.S_ISDIR((await self.in_thread(stat_path, dest)).st_mode):
            raise BadRequest(f"Not a directory: {dest}")
        job = self.files_app.jobs.start(op, paths, dest)
        self.log.info(
            "%s: %s job %s of %d item(s) into %r",
            self.current_user.username,
            op,
            job.id,
            len(paths),
            dest,
        )
        self.set_status(202)
        self.finish({"job": job.id})


class JobHandler(FilesAPIHandler):
    """``GET files/api/jobs/<id>``: progress and errors of a copy or move."""

    @web.authenticated
    @authorized
    def get(self, job_id: str) -> None:
        self.finish(self.files_app.jobs.get(job_id).snapshot())


class ContentHandler(FilesAPIHandler):
    """``GET files/api/content?path=`` and ``PUT files/api/content {"path", "content",
    "etag"}``: the editor's load and conflict-checked save."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.resolve(self.get_query_argument("path", None, strip=False))
        self.finish(await self.in_thread(read_text, path, self.files_app.max_edit_size))

    @web.authenticated
    @authorized
    async def put(self) -> None:
        body = self.json_body()
        path = self.resolve(body.get("path"))
        if "etag" not in body or not isinstance(body["etag"], str | None):
            raise BadRequest("etag must be the etag the file was read with, or null to create")
        etag = await self.in_thread(
            save_text, path, body.get("content"), body["etag"], self.files_app.max_edit_size
        )
        self.log.info("%s: saved %r", self.current_user.username, path)
        self.finish({"status": "ok", "etag": etag})


class UploadSessionsHandler(FilesAPIHandler):
    """``POST files/api/uploads {"path", "size", "overwrite"}``: open a resumable upload."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        path = self.resolve(body.get("path"), follow=False)
        uploads = self.files_app.uploads
        await self.in_thread(self.files_app.remove_stale_uploads)
        session = await self.in_thread(
            uploads.create, path, body.get("size"), body.get("overwrite", False)
        )
        reply: dict[str, Any] = {"id": session.id, "offset": 0, "size": session.size}
        if session.size == 0:  # nothing will be sent: complete at once
            await self.in_thread(uploads.complete, session)
            reply.update(done=True, path=session.path)
        self.log.info(
            "%s: upload session %s for %r (%d bytes)",
            self.current_user.username,
            session.id,
            path,
            session.size,
        )
        self.set_status(201)
        self.finish(reply)


@web.stream_request_body
class UploadSessionHandler(FilesAPIHandler):
    """``GET``/``PUT``/``DELETE files/api/uploads/<id>``: where to resume, the next chunk
    (``Content-Range: bytes <first>-<last>/<size>``), cancel.

    A chunk must start at the current offset (else 409 with ``offset``). Bytes of a chunk
    cut off mid-way stay, and the client resumes from ``GET``'s offset. When the last byte
    arrives the file is put in place; ``Content-Range: bytes */<size>`` retries that step.
    """

    session: UploadSession | None = None
    writer: ChunkWriter | None = None
    body_file: str | None = None

    async def prepare(self) -> None:
        await super().prepare()
        if self._finished or self.request.method != "PUT":
            return
        await self.check_may_write()
        uploads = self.files_app.uploads
        session = uploads.get(self.path_args[0])
        byte_range = parse_content_range(self.request.headers.get("Content-Range"), session.size)
        offset = session.offset()
        if byte_range is None:
            if offset != session.size:
                raise Conflict(f"The upload is incomplete at {offset} bytes", offset=offset)
        else:
            check_chunk_size(*byte_range, self.files_app.max_upload_chunk)
            if byte_range[0] != offset:
                raise Conflict(f"Expected the chunk starting at byte {offset}", offset=offset)
        uploads.claim(session)
        self.session = session
        if byte_range is not None:
            self.body_file = self.nginx_body_file()
            self.writer = ChunkWriter(session, *byte_range)
            self.request.connection.set_max_body_size(byte_range[1] - byte_range[0] + 1)

    def data_received(self, chunk: bytes) -> None:
        if self.writer is not None and self.body_file is None:
            self.writer.write(chunk)

    def on_connection_close(self) -> None:
        self._release()
        super().on_connection_close()

    def on_finish(self) -> None:
        self._release()
        super().on_finish()

    def _release(self) -> None:
        # Before put() took over (or when it never runs): keep the bytes, free the session.
        if self.writer is not None:
            self.writer.close(check=False)
            self.writer = None
        if self.session is not None:
            self.files_app.uploads.release(self.session)
            self.session = None

    @web.authenticated
    @authorized
    def get(self, session_id: str) -> None:
        self.finish(self.files_app.uploads.get(session_id).describe())

    @web.authenticated
    @authorized
    async def put(self, session_id: str) -> None:
        # The chunk is ours now: a connection closing must not close the file under the
        # worker, nor let another chunk in before this one is done.
        session, writer = self.session, self.writer
        self.session = self.writer = None
        if session is None:
            raise FilesError("Upload session not prepared")
        try:
            if writer is not None:
                if self.body_file is not None:
                    await self.in_thread(writer.write_file, self.body_file)
                writer.close()
            await self._finish_chunk(session)
        finally:
            if writer is not None:
                writer.close(check=False)
            self.files_app.uploads.release(session)

    async def _finish_chunk(self, session: UploadSession) -> None:
        """Reply with the new offset, putting the file in place after its last byte."""
        reply = {**session.describe(), "done": False}
        del reply["path"]
        if reply["offset"] == session.size:
            await self.in_thread(self.files_app.uploads.complete, session)
            reply.update(done=True, path=session.path)
            self.log.info(
                "%s: upload %s complete: %r", self.current_user.username, session.id, session.path
            )
        self.finish(reply)

    @web.authenticated
    @authorized
    async def delete(self, session_id: str) -> None:
        await self.in_thread(self.files_app.uploads.cancel, session_id)
        self.log.info("%s: upload session %s cancelled", self.current_user.username, session_id)
        self.finish({"status": "ok"})


default_handlers = [
    (r"/files/api/mkdir", MkdirHandler),
    (r"/files/api/newfile", NewFileHandler),
    (r"/files/api/rename", RenameHandler),
    (r"/files/api/delete", DeleteHandler),
    (r"/files/api/chmod", ChmodHandler),
    (r"/files/api/(copy|move)", TransferJobHandler),
    (r"/files/api/jobs/([^/]+)", JobHandler),
    (r"/files/api/content", ContentHandler),
    (r"/files/api/uploads", UploadSessionsHandler),
    (r"/files/api/uploads/([^/]+)", UploadSessionHandler),
]
