"""JSON API of the dashboard: ``POST {base_url}api/ondemand/announcements/<id>/dismiss``.

Replies are ``{"status": "ok"}`` or ``{"status": "error", "message": ...}``.
"""

from __future__ import annotations

import json
from http.client import responses
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from .handlers import AUTH_RESOURCE, DashboardAppMixin


class PortalAPIHandler(DashboardAppMixin, ExtensionHandlerMixin, APIHandler):
    """Base of the portal's JSON handlers: errors as ``{"status": "error", "message": ...}``."""

    auth_resource = AUTH_RESOURCE

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Reply with the message of an :class:`~tornado.web.HTTPError`; never with the
        details of an unexpected exception, which tornado logs."""
        message = responses.get(status_code, "Unknown HTTP Error")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": "error", "message": message}))


class AnnouncementDismissHandler(PortalAPIHandler):
    """Dismiss a dismissible announcement, or acknowledge a required one, for good.

    410 Gone when no current announcement has the id (removed, edited or expired since the page
    was loaded), 400 when it is neither dismissible nor required.
    """

    @web.authenticated
    @authorized
    def post(self, announcement_id: str) -> None:
        app = self.dashboard_app
        announcements = {a.id: a for a in app.load_announcements()}
        announcement = announcements.get(announcement_id)
        if announcement is None:
            raise web.HTTPError(410, "No current announcement has id %r", announcement_id)
        if not (announcement.dismissible or announcement.required):
            raise web.HTTPError(400, "Announcement %r cannot be dismissed", announcement_id)
        user = self.current_user.username
        try:
            app.dismiss_announcement(announcement_id, frozenset(announcements))
        except OSError as e:
            self.log.warning("%s: cannot save dismissal of %s: %s", user, announcement_id, e)
            raise web.HTTPError(500, "Could not save the dismissal: %s", e.strerror or e) from e
        self.log.info("%s: dismissed announcement %s", user, announcement_id)
        self.finish({"status": "ok"})


default_handlers = [
    (r"/api/ondemand/announcements/([^/]+)/dismiss", AnnouncementDismissHandler),
]
