"""HTML pages: Active jobs (``jobs/``) and the job composer (``jobs/composer/``). They render
templates extending the dashboard's ``base.html``; ``jobs.js`` and ``composer.js`` fill and
refresh them from :mod:`.api` (so the page itself never waits for Slurm)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ondemand_dashboard.handlers import PortalPageHandler, html_safe_json

if TYPE_CHECKING:
    from .app import JobsExtensionApp


class JobsMixin:
    settings: dict[str, Any]
    base_url: str

    @property
    def jobs_app(self) -> JobsExtensionApp:
        return self.settings["ondemand_jobs"]  # type: ignore[no-any-return]

    def urls(self) -> dict[str, str]:
        return {
            "jobs": url_path_join(self.base_url, "jobs/"),
            "composer": url_path_join(self.base_url, "jobs/composer/"),
            "api": url_path_join(self.base_url, "api/ondemand/jobs"),
            "composer_api": url_path_join(self.base_url, "api/ondemand/composer"),
            "files": url_path_join(self.base_url, "files/fs" + quote(os.path.expanduser("~"))),
        }


class JobsPageHandler(JobsMixin, PortalPageHandler):
    nav_id = "jobs"

    def render_jobs_page(self, template: str, **namespace: Any) -> None:
        self.render_page(
            template,
            urls=self.urls(),
            jobs_static_url=self.static_url,
            poll_ms=int(self.jobs_app.poll_interval * 1000),
            **namespace,
        )


class ActiveJobsPageHandler(JobsPageHandler):
    """``jobs/``: the table is filled and refreshed by jobs.js."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        app = self.jobs_app
        self.render_jobs_page(
            "jobs.html",
            all_allowed=app.show_all_jobs,
            has_clusters=bool(app.clusters()),
        )


class ComposerPageHandler(JobsPageHandler):
    """``jobs/composer/``: the job folders are filled by composer.js."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        app = self.jobs_app
        templates = [
            {"name": t.name, "title": t.title, "description": t.description}
            for t in sorted(app.templates().values(), key=lambda t: t.title.lower())
        ]
        clusters = [{"id": c.id, "title": c.title} for c in app.clusters()]
        self.render_jobs_page(
            "composer.html",
            templates=templates,
            clusters=clusters,
            clusters_json=html_safe_json(clusters),
            jobs_dir=app.folders().root,
        )


class SlashRedirectHandler(JobsPageHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.redirect(self.request.path + "/")


default_handlers = [
    (r"/jobs", SlashRedirectHandler),
    (r"/jobs/composer", SlashRedirectHandler),
    (r"/jobs/", ActiveJobsPageHandler),
    (r"/jobs/composer/", ComposerPageHandler),
]
