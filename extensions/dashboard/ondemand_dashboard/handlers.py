"""HTML pages of the dashboard, and :class:`PortalPageHandler`, the base of every portal page.

Pages render Jinja templates that extend ``templates/base.html`` (navigation bar, main
container, footer) with Bootstrap 5 and Bootstrap Icons from ``{base_url}static/vendor/``.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerJinjaMixin, ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web

from .paths import EXTENSION_NAME, STATIC_DIR, STATIC_URL_PREFIX
from .vendor import VENDOR_URL_PREFIX, VendorStaticHandler

if TYPE_CHECKING:
    from .app import DashboardExtensionApp

#: The authorization resource of the portal pages and API (see jupyter_server.auth).
AUTH_RESOURCE = "ondemand_dashboard"


def html_safe_json(value: Any) -> str:
    """JSON that may be placed verbatim in HTML (a ``<script type="application/json">``
    element or an attribute): ``<``, ``>``, ``&`` and ``'`` are escaped as ``\\u00XX``, and
    everything non-ASCII (lone surrogates of non-UTF-8 names too) as a ``\\u`` escape."""
    return (
        json.dumps(value, ensure_ascii=True)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("'", "\\u0027")
    )


#: The portal's pages in navigation order: (extension that serves it, id, label, Bootstrap
#: Icons name, path under base_url; ``{home}`` is the user's home directory, URL-quoted).
NAV_ENTRIES = [
    ("ondemand_dashboard", "dashboard", "Dashboard", "speedometer2", "dashboard"),
    ("ondemand_files", "files", "Files", "folder2-open", "files/fs{home}/"),
    ("ondemand_sessions", "apps", "Apps", "grid-3x3-gap", "apps/"),
    ("ondemand_sessions", "sessions", "Sessions", "window-stack", "sessions/"),
    ("ondemand_jobs", "jobs", "Jobs", "list-task", "jobs/"),
    ("ondemand_shell", "shell", "Shell", "terminal", "shell/"),
    ("ondemand_status", "status", "Status", "bar-chart-line", "status/"),
]

#: Bootstrap Icons name per announcement type.
ANNOUNCEMENT_ICONS = {
    "info": "info-circle-fill",
    "success": "check-circle-fill",
    "warning": "exclamation-triangle-fill",
    "danger": "exclamation-octagon-fill",
}


class DashboardAppMixin:
    """Access to the dashboard extension's configuration and site content from any handler,
    including handlers of other portal extensions."""

    settings: dict[str, Any]

    @property
    def dashboard_app(self) -> DashboardExtensionApp:
        """The :class:`~ondemand_dashboard.app.DashboardExtensionApp` of this server."""
        return self.settings[EXTENSION_NAME]  # type: ignore[no-any-return]


class PortalPageHandler(
    DashboardAppMixin, ExtensionHandlerJinjaMixin, ExtensionHandlerMixin, JupyterHandler
):
    """Base of the portal's HTML pages (templates extending ``base.html``).

    Subclasses set :attr:`nav_id` to the navigation entry they highlight and call
    :meth:`render_page` from an authenticated ``get``. Site-wide values (title, logout URL,
    vendor directory) come from the dashboard extension's configuration, so pages of other
    portal extensions look the same.
    """

    auth_resource = AUTH_RESOURCE
    nav_id = ""

    def nav_items(self) -> list[dict[str, str]]:
        """The navigation bar's entries: only pages whose extension runs in this server."""
        home = quote(os.path.expanduser("~"))
        return [
            {
                "id": nav_id,
                "label": label,
                "icon": icon,
                "url": url_path_join(self.base_url, path.format(home=home)),
            }
            for extension, nav_id, label, icon, path in NAV_ENTRIES
            if extension in self.settings
        ]

    def vendor_url(self, package: str, path: str) -> str:
        """Versioned URL of ``path`` in an allowlisted npm ``package``."""
        settings = {
            "static_path": self.dashboard_app.vendor_dir,
            "static_url_prefix": url_path_join(self.base_url, VENDOR_URL_PREFIX),
        }
        return str(VendorStaticHandler.make_static_url(settings, f"{package}/{path}"))

    def portal_static_url(self, path: str) -> str:
        """Versioned URL of a file of the dashboard's own static directory."""
        settings = {
            "static_path": STATIC_DIR,
            "static_url_prefix": url_path_join(self.base_url, STATIC_URL_PREFIX),
        }
        return str(web.StaticFileHandler.make_static_url(settings, path))

    def render_page(self, template: str, **namespace: Any) -> None:
        """Render ``template`` with the layout's values plus ``namespace`` and write it."""
        app = self.dashboard_app
        # Rendering reads self.xsrf_token (template_namespace), which sets the _xsrf cookie
        # the page's script sends back in the X-XSRFToken header.
        html = self.render_template(
            template,
            site_title=app.site_title,
            user_name=self.current_user.username,
            logout_url=app.logout_url,
            nav_items=self.nav_items(),
            nav_id=self.nav_id,
            vendor_url=self.vendor_url,
            portal_static_url=self.portal_static_url,
            **namespace,
        )
        self.write(html)


class DashboardHandler(PortalPageHandler):
    """The home page: announcements (dismissible alerts, blocking modals for required ones),
    the message of the day, and, when the status extension runs, the user's quota and balance
    warnings and a System status card."""

    nav_id = "dashboard"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        app = self.dashboard_app
        dismissed = app.dismissed_announcements()
        shown = [a for a in app.load_announcements() if a.id not in dismissed]
        # The status extension (ondemand_status) reads the quota files and serves the card's
        # data; the dashboard works without it.
        status_app = self.settings.get("ondemand_status")
        quota_warnings = []
        if status_app is not None:
            try:
                quota_warnings = await status_app.quota_warnings()
            except Exception:  # a bug there must not take the home page down with it
                self.log.exception("Quota warnings failed; the dashboard is shown without them")
        self.render_page(
            "dashboard.html",
            announcements=[a for a in shown if not a.required],
            required_announcements=[a for a in shown if a.required],
            motd_html=app.load_motd(),
            announcement_icons=ANNOUNCEMENT_ICONS,
            quota_warnings=quota_warnings,
            status_widget=status_app.dashboard_widget(self.base_url) if status_app else None,
        )


default_handlers = [
    (r"/dashboard", DashboardHandler),
]
