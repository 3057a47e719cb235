"""Front-end libraries from npm (Bootstrap, Bootstrap Icons), served at ``{base}static/vendor/``.

In production the per-user nginx serves this URL prefix straight from ``vendor_dir``; this
handler serves the same files when jupyter-server runs alone (development, tests). Only the
packages in :data:`VENDOR_PACKAGES` are reachable, whatever else ``node_modules`` holds.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Coroutine
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from tornado import web

#: npm packages the portal's pages use; everything else under vendor_dir is refused.
VENDOR_PACKAGES = frozenset(
    {"bootstrap", "bootstrap-icons", "ace-builds", "@xterm/xterm", "@xterm/addon-fit", "chart.js"}
)

#: URL prefix below the server's base_url; keep in sync with the PUN's nginx config.
VENDOR_URL_PREFIX = "static/vendor/"


class VendorStaticHandler(web.StaticFileHandler):
    """Serve ``<package>/<path>`` from ``vendor_dir`` for allowlisted npm packages.

    Public like jupyter-server's own static files: these are published libraries, and the
    login and error pages need them too.
    """

    @allow_unauthenticated
    def get(self, path: str, include_body: bool = True) -> Coroutine[Any, Any, None]:
        return super().get(path, include_body)

    @allow_unauthenticated
    def head(self, path: str) -> Awaitable[None]:
        return super().head(path)

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        """Refuse (404) files outside the allowlisted packages, then apply tornado's checks
        (403 outside ``root``, symlinks leading out of it, 404 missing files)."""
        root_dir = os.path.abspath(root)
        relative = os.path.relpath(absolute_path, root_dir)
        parts = relative.split(os.sep)
        # a scoped npm package (@scope/name) is two path segments
        package = os.path.join(*parts[:2]) if parts[0].startswith("@") else parts[0]
        if package == os.pardir:
            raise web.HTTPError(403, "%s is not in the vendor directory", self.path)
        if package not in VENDOR_PACKAGES:
            raise web.HTTPError(404, "package %r is not served", package)
        return super().validate_absolute_path(root, absolute_path)
