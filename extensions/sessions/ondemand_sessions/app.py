"""The sessions jupyter-server extension: configuration and the site content it reads (apps,
clusters, live partitions), plus the user's remembered form values."""

from __future__ import annotations

import os
import shutil
from typing import Any

from traitlets import Dict, Float, List, Unicode, default

from ondemand_dashboard.portalapp import PortalExtensionApp
from ondemand_dashboard.usersettings import write_user_settings
from ondemand_hub.scheduler.status import JobStatus, StatusCache
from ondemand_hub.site.apps import App, default_app_dirs, load_apps
from ondemand_hub.site.clusters import Cluster

from . import api, handlers, share
from .jobs import history_jobs, make_job_query
from .paths import STATIC_DIR, TEMPLATES_DIR

#: Key of the user's settings file holding the last values of each app's form.
APP_FORMS_KEY = "app_forms"


class SessionsExtensionApp(PortalExtensionApp):
    """Interactive apps: catalogue, launch forms, "My sessions"."""

    name = "ondemand_sessions"
    extension_url = "/apps/"
    package_templates_dir = TEMPLATES_DIR
    package_static_dir = STATIC_DIR

    app_dirs = List(
        Unicode(),
        help="""Directories of app directories; a later one's app replaces an earlier one's.

        Must match the hub's ``SlurmSessionSpawner.app_dirs``. The default is the bundled apps
        then ``/etc/ondemand-hub/apps``.
        """,
    ).tag(config=True)

    required_commands = Dict(
        {"vscode": "code-server", "code-server": "code-server", "desktop": "vncserver"},
        help="""Per app id, a command the app needs (looked up on PATH, or an absolute path).

        When it is missing the catalogue shows the app as "not installed on this cluster"
        and its form is not offered, e.g. ``{"vscode": "/opt/code-server/bin/code-server"}``.
        """,
    ).tag(config=True)

    poll_interval = Float(5.0, help="Seconds between refreshes of the My sessions page.").tag(
        config=True
    )

    @default("app_dirs")
    def _default_app_dirs(self) -> list[str]:
        return default_app_dirs()

    def initialize_settings(self) -> None:
        self._job_caches: dict[Cluster, StatusCache] = {}

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers.default_handlers)
        self.handlers.extend(api.default_handlers)
        self.handlers.extend(share.share_handlers)

    # -- site content ------------------------------------------------------------------------

    def apps(self) -> dict[str, App]:
        apps, errors = load_apps(self.app_dirs)
        for error in errors:
            self.log.warning("apps: %s", error)
        return apps

    def app_missing(self, app: App) -> str | None:
        """The missing command that makes ``app`` unavailable here, or None."""
        command = self.required_commands.get(app.id)
        if not command:
            return None
        if os.path.isabs(command):
            return None if os.access(command, os.X_OK) else command
        return None if shutil.which(command) else command

    def job_cache(self, cluster: Cluster) -> StatusCache | None:
        """The shared squeue answer of a Slurm cluster (None for a local one)."""
        if cluster.adapter != "slurm":
            return None
        cache = self._job_caches.get(cluster)
        if cache is None:
            query = make_job_query(
                self.slurm_commands(cluster), self.unix_user(), self.command_timeout
            )
            cache = self._job_caches[cluster] = StatusCache(query, self.job_status_interval)
        return cache

    def forget_jobs(self) -> None:
        """After a stop or delete: the next cards ask squeue again instead of showing the job
        as it was for up to ``job_status_interval``."""
        for cache in self._job_caches.values():
            cache.invalidate()

    async def job_history(self, cluster: Cluster) -> dict[str, JobStatus]:
        """The user's jobs of the last 7 days from Slurm's accounting (the PUN's shared sacct
        answer), for the cards of ended sessions whose job squeue no longer lists (MinJobAge);
        {} where there is no accounting (sacct fails without slurmdbd) or on a local cluster."""
        answer = await self.slurm_history(cluster)
        return history_jobs(answer.jobs, self.unix_user()) if answer.available else {}

    # -- remembered form values --------------------------------------------------------------

    def remembered_values(self, dashboard: Any, app_id: str) -> dict[str, Any]:
        forms = dashboard.read_user_settings().get(APP_FORMS_KEY)
        values = forms.get(app_id) if isinstance(forms, dict) else None
        return dict(values) if isinstance(values, dict) else {}

    def remember_values(self, dashboard: Any, app_id: str, values: dict[str, Any]) -> None:
        """Store the last submitted values of ``app_id``'s form; a failure is only logged."""
        settings = dashboard.read_user_settings()
        forms = settings.get(APP_FORMS_KEY)
        forms = dict(forms) if isinstance(forms, dict) else {}
        forms[app_id] = values
        try:
            write_user_settings(dashboard.settings_path, {**settings, APP_FORMS_KEY: forms})
        except OSError as e:
            self.log.warning("Cannot remember the form values of %s: %s", app_id, e)
