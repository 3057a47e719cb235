"""The dashboard jupyter-server extension: configuration, handlers and the site content it reads.

Loaded into every user's PUN. The pages live in :mod:`.handlers` (HTML) and :mod:`.api` (JSON);
announcements and the message of the day are re-read from disk on each request, because admins
edit those files on a live system and reading a handful of small files is cheap.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from traitlets import TraitError, Unicode, default, validate

from ondemand_hub.site.announcements import Announcement, load_announcements
from ondemand_hub.site.motd import load_motd

from . import api, handlers
from .paths import STATIC_DIR, TEMPLATES_DIR, hub_page_url
from .usersettings import (
    UserSettingsError,
    dismissed_ids,
    read_user_settings,
    with_dismissed,
    write_user_settings,
)
from .vendor import VENDOR_URL_PREFIX, VendorStaticHandler


class DashboardExtensionApp(ExtensionAppJinjaMixin, ExtensionApp):
    """The portal's home page, base layout, announcements and message of the day."""

    name = "ondemand_dashboard"
    extension_url = "/dashboard"
    load_other_extensions = True

    static_paths = [STATIC_DIR]
    template_paths = [TEMPLATES_DIR]

    site_title = Unicode(
        "ondemand-hub",
        help="""Name of the portal, shown in the navigation bar and the browser tab.

        Plain text. The default is the product name; sites usually set their own,
        e.g. ``c.DashboardExtensionApp.site_title = "Example HPC OnDemand"``.
        """,
    ).tag(config=True)

    announcements_dir = Unicode(
        "/etc/ondemand-hub/announcements.d",
        help="""Directory of announcement files (``*.md``, ``*.yml``, ``*.yaml``).

        An absolute path (``~`` is expanded); re-read on every dashboard load, a missing
        directory means no announcements. The default is the site configuration directory
        shared with the hub, e.g. ``/srv/portal/announcements.d`` to keep it elsewhere.
        See docs/announcements.md for the file format.
        """,
    ).tag(config=True)

    motd_path = Unicode(
        "/etc/ondemand-hub/motd.md",
        help="""Markdown file shown as the message of the day on the dashboard.

        An absolute path (``~`` is expanded); re-read on every dashboard load, a missing
        file shows nothing. The default sits next to the announcements in the site
        configuration directory, e.g. ``/etc/motd.md`` to share a file with the login nodes.
        """,
    ).tag(config=True)

    vendor_dir = Unicode(
        "/opt/ondemand-hub/share/node_modules",
        help="""The ``node_modules`` directory holding the npm front-end libraries.

        An absolute path (``~`` is expanded). Only ``bootstrap`` and ``bootstrap-icons`` are
        served from it, at ``{base_url}static/vendor/<package>/``. The default is where the
        installer runs ``npm install``, e.g. ``/usr/share/ondemand-hub/node_modules`` for a
        distribution package.
        """,
    ).tag(config=True)

    settings_path = Unicode(
        help="""The user's portal settings file (JSON), e.g. dismissed announcements.

        An absolute path; ``~`` is expanded for the user the server runs as. The default,
        ``~/.config/ondemand-hub/settings.json``, follows the XDG layout so the file survives
        restarts and moves with the home directory, e.g. ``/scratch/$USER/portal.json``
        for sites without writable homes (write it with the user's path, not ``$USER``).
        """,
    ).tag(config=True)

    logout_url = Unicode(
        help="""URL of the "Log out" link in the navigation bar.

        Defaults to JupyterHub's logout page, ``{JUPYTERHUB_BASE_URL}hub/logout``
        (``/hub/logout`` when the hub's base URL is ``/``; on the hub's own host with one origin
        per user), so logging out ends the hub session and not only this server's; e.g.
        ``/oidc/logout`` behind a single sign-on proxy.
        """,
    ).tag(config=True)

    @default("settings_path")
    def _default_settings_path(self) -> str:
        return os.path.expanduser("~/.config/ondemand-hub/settings.json")

    @default("logout_url")
    def _default_logout_url(self) -> str:
        return hub_page_url("logout")

    @validate("announcements_dir", "motd_path", "vendor_dir", "settings_path")
    def _validate_absolute_path(self, proposal: dict[str, Any]) -> str:
        path = os.path.expanduser(str(proposal["value"]))
        if not os.path.isabs(path):
            raise TraitError(
                f"DashboardExtensionApp.{proposal['trait'].name}: expected an absolute path "
                f"(or one starting with ~), got {proposal['value']!r}"
            )
        return path

    def initialize_handlers(self) -> None:
        """Register the HTML pages, the JSON API and the vendor static files."""
        self.handlers.extend(handlers.default_handlers)
        self.handlers.extend(api.default_handlers)
        self.handlers.append(
            (rf"/{VENDOR_URL_PREFIX}(.*)", VendorStaticHandler, {"path": self.vendor_dir})
        )

    def load_announcements(self) -> list[Announcement]:
        """The current, unexpired announcements; broken files are logged and skipped."""
        now = datetime.datetime.now().astimezone()
        announcements, errors = load_announcements(self.announcements_dir, now)
        for error in errors:
            self.log.warning("Ignoring announcement %s", error)
        return announcements

    def load_motd(self) -> str | None:
        """Sanitised HTML of the message of the day, or None; errors are logged."""
        html, errors = load_motd(self.motd_path)
        for error in errors:
            self.log.warning("Ignoring message of the day %s", error)
        return html

    def read_user_settings(self) -> dict[str, Any]:
        """The user's settings; a corrupt file is logged and treated as empty."""
        try:
            return read_user_settings(self.settings_path)
        except UserSettingsError as e:
            self.log.warning("Ignoring user settings %s", e)
            return {}

    def dismissed_announcements(self) -> frozenset[str]:
        """Ids of the announcements the user dismissed or acknowledged."""
        return dismissed_ids(self.read_user_settings())

    def dismiss_announcement(self, announcement_id: str, current_ids: frozenset[str]) -> None:
        """Record a dismissal in the settings file (rewriting it if it was corrupt).

        Raises :class:`OSError` when the file cannot be written.
        """
        settings = with_dismissed(self.read_user_settings(), announcement_id, current_ids)
        write_user_settings(self.settings_path, settings)
