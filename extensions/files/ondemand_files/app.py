"""The files jupyter-server extension: configuration, shared state and the handlers it adds.

Loaded into every user's PUN next to the dashboard (whose layout and settings it uses). The
pages live in :mod:`.handlers` (HTML, downloads, uploads by PUT) and :mod:`.api` (JSON); the
work is done by the pure modules (:mod:`.listing`, :mod:`.transfer`, :mod:`.jobs`,
:mod:`.editor`, :mod:`.fsops`), mostly in worker threads so a slow file system never blocks
the server.
"""

from __future__ import annotations

import os
import pwd
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from jupyterhub.traitlets import ByteSpecification
from traitlets import Float, Integer, List, TraitError, Unicode, default, validate

from ondemand_dashboard.paths import TEMPLATES_DIR as DASHBOARD_TEMPLATES_DIR

from . import api, handlers
from .jobs import JobManager
from .listing import MAX_LIMIT
from .paths import STATIC_DIR, TEMPLATES_DIR, Allowlist, expand_favorite
from .transfer import UploadSessions

#: Environment variable naming the PUN's private (0700) temporary directory; nginx writes
#: request bodies to its ``client_body`` sub-directory.
PUN_TMP_ENV = "ONDEMAND_HUB_PUN_TMP"


class FilesExtensionApp(ExtensionAppJinjaMixin, ExtensionApp):
    """File explorer and editor: browse, upload, download, copy, move, edit."""

    name = "ondemand_files"
    extension_url = "/files"
    load_other_extensions = True

    favorites = List(
        Unicode(),
        default_value=["$HOME"],
        help="""Directories offered as favourites on the Files page, in this order.

        Path templates: ``$USER`` and ``$HOME`` (or ``${USER}``, ``${HOME}``) are replaced by
        the user's name and home directory; entries that do not exist for a user, or lie
        outside the allowlist, are not shown. The default, ``["$HOME"]``, is the one
        directory every user has; e.g. ``["$HOME", "/scratch/$USER", "/project"]``.
        """,
    ).tag(config=True)

    allowlist = List(
        Unicode(),
        help="""Directories the Files app may touch, with everything below them.

        Absolute paths (``~`` is expanded for the user). A path is allowed only if its
        real path (symbolic links and ``..`` resolved) is inside a root's real path. Empty,
        the default, means no restriction beyond the operating system's permissions, which
        always apply since the app runs as the user; e.g. ``["/home", "/scratch"]``.
        """,
    ).tag(config=True)

    max_edit_size = ByteSpecification(
        5 * 1024 * 1024,
        allow_none=False,
        help="""Largest file the editor opens or saves, in bytes (suffixes K, M, G accepted).

        The default, 5M, keeps the browser responsive (Ace slows down beyond a few MB) and
        covers scripts, job files and configuration; e.g. ``"20M"`` for large input decks.
        Larger files are refused with a message (HTTP 413) and can still be downloaded.
        """,
    ).tag(config=True)

    listing_page_size = Integer(
        500,
        help=f"""Entries per page of a directory listing (1-{MAX_LIMIT}).

        The default, 500, fills a screen many times over and is listed in a few
        milliseconds even in a 100,000-entry directory; the page loads more on scroll.
        Clients may ask for another size with ``limit``; e.g. ``1000``.
        """,
    ).tag(config=True)

    upload_staging_dir = Unicode(
        help=f"""Directory holding the bytes of resumable uploads until they are complete.

        An absolute path (``~`` is expanded), created with mode 0700. The default is
        ``${PUN_TMP_ENV}/uploads`` when that variable is set (the PUN's private temporary
        directory, next to nginx's request bodies), else ``~/.cache/ondemand-hub/uploads``;
        e.g. ``/scratch/$USER/.uploads`` (with the real user name) for sites whose temporary
        space is small.
        """,
    ).tag(config=True)

    upload_session_max_age = Float(
        24 * 3600.0,
        help="""Seconds after its last chunk when an unfinished resumable upload is removed.

        The default, one day, lets an upload interrupted in the evening (laptop closed,
        network lost) resume the next morning; e.g. ``3600`` where staging space is tight.
        Checked when the server starts and whenever an upload begins.
        """,
    ).tag(config=True)

    max_upload_chunk = ByteSpecification(
        64 * 1024 * 1024,
        allow_none=False,
        help="""Largest chunk of a resumable upload, in bytes (suffixes K, M, G accepted).

        The page sends files in chunks of this size; larger chunks are refused (HTTP 413).
        The default, 64M, keeps per-request overhead negligible at disk speed while losing
        little on a dropped connection; e.g. ``"16M"`` on slow links. nginx's
        ``client_max_body_size`` must be at least this.
        """,
    ).tag(config=True)

    @default("template_paths")
    def _default_template_paths(self) -> list[str]:
        # Our templates extend the dashboard's base.html.
        return [TEMPLATES_DIR, DASHBOARD_TEMPLATES_DIR]

    @default("static_paths")
    def _default_static_paths(self) -> list[str]:
        return [STATIC_DIR]

    @default("upload_staging_dir")
    def _default_upload_staging_dir(self) -> str:
        pun_tmp = os.environ.get(PUN_TMP_ENV)
        if pun_tmp:
            return os.path.join(pun_tmp, "uploads")
        return os.path.expanduser("~/.cache/ondemand-hub/uploads")

    @validate("allowlist")
    def _validate_allowlist(self, proposal: dict[str, Any]) -> list[str]:
        paths = [os.path.expanduser(p) for p in proposal["value"]]
        for path in paths:
            if not os.path.isabs(path):
                raise TraitError(
                    f"FilesExtensionApp.allowlist: expected absolute paths, got {path!r}"
                )
        return paths

    @validate("upload_staging_dir")
    def _validate_upload_staging_dir(self, proposal: dict[str, Any]) -> str:
        path = os.path.expanduser(proposal["value"])
        if not os.path.isabs(path):
            raise TraitError(
                f"FilesExtensionApp.upload_staging_dir: expected an absolute path, got {path!r}"
            )
        return path

    @validate("listing_page_size")
    def _validate_listing_page_size(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 1 <= value <= MAX_LIMIT:
            raise TraitError(
                f"FilesExtensionApp.listing_page_size: expected 1 to {MAX_LIMIT}, got {value}"
            )
        return value

    @validate("max_edit_size", "max_upload_chunk", "upload_session_max_age")
    def _validate_positive(self, proposal: dict[str, Any]) -> Any:
        if proposal["value"] <= 0:
            raise TraitError(
                f"FilesExtensionApp.{proposal['trait'].name}: expected a positive number, "
                f"got {proposal['value']!r}"
            )
        return proposal["value"]

    def initialize_settings(self) -> None:
        """Resolve the allowlist, start the worker pools, remove stale upload sessions."""
        self.path_allowlist = Allowlist.from_paths(self.allowlist)
        self.uploads = UploadSessions(self.upload_staging_dir, self.upload_session_max_age)
        # Copies and moves may run for hours: their own small pool, so listings, saves and
        # zips never wait behind them (and zips not behind each other for long).
        self.jobs_executor = ThreadPoolExecutor(2, thread_name_prefix="ondemand-files-job")
        self.zip_executor = ThreadPoolExecutor(4, thread_name_prefix="ondemand-files-zip")
        self.jobs = JobManager(self.jobs_executor, self.path_allowlist, self.log)
        self.remove_stale_uploads()

    def initialize_handlers(self) -> None:
        """Register the pages, downloads, uploads and the JSON API."""
        self.handlers.extend(handlers.default_handlers)
        self.handlers.extend(api.default_handlers)

    async def stop_extension(self) -> None:
        """Stop the worker pools; running copies stop with the server."""
        self.jobs_executor.shutdown(wait=False, cancel_futures=True)
        self.zip_executor.shutdown(wait=False, cancel_futures=True)

    @property
    def user_name(self) -> str:
        """The user this server runs as."""
        return pwd.getpwuid(os.getuid()).pw_name

    @property
    def home_dir(self) -> str:
        """The user's home directory (``$HOME``)."""
        return os.path.expanduser("~")

    @property
    def body_file_dir(self) -> str | None:
        """Where the PUN's nginx writes request bodies; None outside a PUN."""
        pun_tmp = os.environ.get(PUN_TMP_ENV)
        return os.path.join(pun_tmp, "client_body") if pun_tmp else None

    def favorite_dirs(self) -> list[tuple[str, str]]:
        """``(label, path)`` of the favourites that exist and are allowed, without repeats."""
        home = self.home_dir
        result: list[tuple[str, str]] = []
        for template in self.favorites:
            path = expand_favorite(template, self.user_name, home)
            if path is None:
                self.log.warning("Ignoring favourite %r: not an absolute path", template)
                continue
            if path in (p for _, p in result) or not os.path.isdir(path):
                continue
            if self.path_allowlist.allows(path):
                result.append(("Home" if path == home else path, path))
        return result

    def start_dir(self) -> str:
        """Where ``files/`` opens: the home directory, else the first favourite, else ``/``."""
        home = self.home_dir
        if os.path.isdir(home) and self.path_allowlist.allows(home):
            return home
        favorites = self.favorite_dirs()
        return favorites[0][1] if favorites else "/"

    def remove_stale_uploads(self) -> None:
        """Remove upload sessions idle for longer than ``upload_session_max_age``."""
        for session_id in self.uploads.remove_stale():
            self.log.info("Removed stale upload session %s", session_id)
