"""What every handler of the files extension shares: access to the app, path arguments that
keep non-UTF-8 bytes, worker threads, and errors as JSON for people.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from http.client import responses
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_server.utils import ensure_async, url_path_join
from tornado import web
from tornado.ioloop import IOLoop

from .errors import FilesError, error_from_oserror
from .paths import parse_path, quote_path
from .transfer import trusted_body_file

if TYPE_CHECKING:
    from .app import FilesExtensionApp

#: The extension's name: the key of its app in the tornado settings.
EXTENSION_NAME = "ondemand_files"

#: The authorization resource of the Files pages and API (see jupyter_server.auth).
AUTH_RESOURCE = "ondemand_files"

T = TypeVar("T")


class FilesHandlerMixin:
    """Mixed into every Files handler, before the jupyter-server base class.

    FilesErrors raised anywhere in a handler become ``{"status": "error", "message": ...}``
    (plus their ``extra`` fields) with their HTTP code, logged as one warning line.
    """

    auth_resource = AUTH_RESOURCE
    settings: dict[str, Any]
    request: Any
    log: Any
    base_url: str
    current_user: Any
    authorizer: Any

    @property
    def files_app(self) -> FilesExtensionApp:
        """The :class:`~ondemand_files.app.FilesExtensionApp` of this server."""
        return self.settings[EXTENSION_NAME]  # type: ignore[no-any-return]

    def decode_argument(self, value: bytes | None, name: str | None = None) -> str | None:
        """Path and query arguments keep bytes that are not UTF-8 (as lone surrogates, the
        way ``os`` functions take them) instead of failing with 400."""
        return None if value is None else value.decode("utf-8", "surrogateescape")

    @property
    def from_nginx(self) -> bool:
        """Whether the PUN's nginx proxied this request (it sets the header, overwriting any
        a client sent), so X-Accel-Redirect and body files may be used."""
        return bool(self.request.headers.get("X-Ondemand-Nginx") == "1")

    def nginx_body_file(self) -> str | None:
        """The file nginx wrote this request's body to, when it did and may be believed
        (:func:`~.transfer.trusted_body_file`); None when the body comes with the request."""
        headers = self.request.headers
        return trusted_body_file(
            headers.get("X-Ondemand-Body-File"),
            self.from_nginx,
            self.files_app.body_file_dir,
            headers.get("X-Ondemand-Body-Length"),
        )

    def wants_json(self) -> bool:
        """Whether the client asked for JSON (``Accept: application/json``)."""
        return "application/json" in self.request.headers.get("Accept", "")

    def resolve(self, raw: object, *, follow: bool = True) -> str:
        """The normalised absolute path for ``raw``, checked against the allowlist (with
        ``follow=False`` a final symbolic link is judged where it sits)."""
        path = parse_path(raw)
        return self.files_app.path_allowlist.check(path, follow=follow)

    def api_urls(self) -> dict[str, str]:
        """URL prefixes the pages' scripts append a percent-encoded absolute path to
        (``fs``, ``zip``, ``edit``) or ``/<endpoint>`` (``api``)."""
        return {
            key: url_path_join(self.base_url, "files", key) for key in ("fs", "api", "zip", "edit")
        }

    def fs_url(self, path: str) -> str:
        """URL of the Files page (or download) of ``path``."""
        return url_path_join(self.base_url, "files/fs") + quote_path(path)

    async def in_thread(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking file system work in the default worker pool."""
        call = functools.partial(func, *args, **kwargs)
        return await IOLoop.current().run_in_executor(None, call)

    async def check_may_write(self) -> None:
        """Authenticate and authorize a write in ``prepare``, before a body is streamed."""
        user = self.current_user
        if not user:
            raise web.HTTPError(403, "Log in to upload")
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, user, "write", self.auth_resource)
        )
        if not allowed:
            raise web.HTTPError(403, "Not authorized to write files")

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        """FilesErrors are the user's input or the OS refusing: one warning, no traceback."""
        if isinstance(value, FilesError):
            user = getattr(self.current_user, "username", "-")
            self.log.warning(
                "%s: %s %s refused (%d): %r",
                user,
                self.request.method,
                self.request.path,
                value.status,
                value.message,
            )
        else:
            super().log_exception(typ, value, tb)  # type: ignore[misc]

    def write_json_error(self, status_code: int, **kwargs: Any) -> None:
        """The JSON error reply for ``send_error`` (sets the FilesError's own status)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        extra: dict[str, Any] = {}
        message = responses.get(status_code, "Unknown HTTP Error")
        if isinstance(exc, OSError):  # one we did not expect here: still say what happened
            exc = error_from_oserror(exc, exc.filename or self.request.path)
        if isinstance(exc, FilesError):
            self.set_status(exc.status)  # type: ignore[attr-defined]
            message, extra = exc.message, exc.extra
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")  # type: ignore[attr-defined]
        self.finish(json.dumps({"status": "error", "message": message, **extra}))  # type: ignore[attr-defined]
