"""HTML pages: the apps catalogue (``apps/``), an app's launch form (``apps/<app>/new``) and
"My sessions" (``sessions/``). They render templates extending the dashboard's ``base.html``;
the form submits and the sessions page refreshes through :mod:`.api` from ``sessions.js``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ondemand_dashboard.handlers import PortalPageHandler, html_safe_json
from ondemand_hub.scheduler.slurm import Partition
from ondemand_hub.site.apps import App, FormError, validate_options

if TYPE_CHECKING:
    from .app import SessionsExtensionApp

APP_ID_RE = r"[a-z][a-z0-9_-]{0,31}"

#: Fields that mean nothing on a cluster without a scheduler (adapter "local": apps run on the
#: portal host): the form leaves them out, so the launch takes their defaults.
SCHEDULER_FIELDS = ("bc_queue", "bc_account", "bc_num_gpus", "bc_num_nodes")


class SessionsMixin:
    settings: dict[str, Any]
    base_url: str

    @property
    def sessions_app(self) -> SessionsExtensionApp:
        return self.settings["ondemand_sessions"]  # type: ignore[no-any-return]

    def urls(self) -> dict[str, str]:
        home = quote(os.path.expanduser("~"))
        return {
            "apps": url_path_join(self.base_url, "apps/"),
            "sessions": url_path_join(self.base_url, "sessions/"),
            "api": url_path_join(self.base_url, "api/ondemand/sessions"),
            "shared": url_path_join(self.base_url, "api/ondemand/shared"),
            "session_dirs": url_path_join(self.base_url, f"files/fs{home}/ondemand/sessions/"),
        }


def form_values(app: App, remembered: dict[str, Any], partitions: list[Partition]) -> dict:
    """A value for every field: the remembered ones that are still valid, else the defaults."""
    options = {k: v for k, v in remembered.items() if app.field(k) is not None}
    for _ in range(len(options) + 1):
        try:
            return validate_options(app, options, partitions)
        except FormError as e:
            if e.field not in options:
                break
            options.pop(e.field)
    values = {f.name: f.value for f in app.fields}
    values.update({k: v for k, v in options.items() if k != "bc_queue"})
    return values


def field_models(
    app: App,
    values: dict[str, Any],
    partitions: list[Partition] | None,
    accounts: list[str] | None = None,
    local: bool = False,
) -> list[dict[str, Any]]:
    """What the form template shows for each field. ``accounts``: the user's Slurm accounts,
    offered as a select for ``bc_account`` (None: it stays a text field); ``local``: a cluster
    without a scheduler, whose form has no :data:`SCHEDULER_FIELDS`."""
    models = []
    for f in app.fields:
        if local and f.name in SCHEDULER_FIELDS:
            continue
        widget, help_text = f.widget, f.help
        options = [[label, value] for label, value in f.options]
        if f.name == "bc_queue":
            options = [
                [p.name + (" (default)" if p.default else ""), p.name]
                for p in partitions or []
                if p.available
            ]
        if f.name == "bc_account" and accounts:
            widget, help_text = "select", "The Slurm account the job is charged to."
            options = [["Your default account", ""], *([a, a] for a in accounts)]
        value = values.get(f.name, f.value)
        models.append(
            {
                "name": f.name,
                "widget": widget,
                "label": f.label,
                "help": help_text,
                "value": "" if value is None else value,
                "min": f.min,
                "max": f.max,
                "step": f.step,
                "options": options,
                "pattern": f.pattern,
                "required": f.required,
            }
        )
    return models


class SessionsPageHandler(SessionsMixin, PortalPageHandler):
    nav_id = "sessions"

    def render_sessions_page(self, template: str, **namespace: Any) -> None:
        self.render_page(
            template,
            urls=self.urls(),
            sessions_static_url=self.static_url,
            **namespace,
        )


class CatalogueHandler(SessionsPageHandler):
    """``apps/``: one card per app, grouped by category."""

    nav_id = "apps"

    @web.authenticated
    @authorized
    def get(self) -> None:
        sapp = self.sessions_app
        categories: dict[str, list[dict[str, Any]]] = {}
        for app in sapp.apps().values():
            missing = sapp.app_missing(app)
            categories.setdefault(app.category, []).append(
                {
                    "id": app.id,
                    "title": app.title,
                    "description": app.description,
                    "icon": app.icon,
                    "installed": missing is None,
                    "url": url_path_join(self.base_url, "apps", app.id, "new"),
                }
            )
        self.render_sessions_page("apps.html", categories=sorted(categories.items()))


class AppFormHandler(SessionsPageHandler):
    """``apps/<app>/new``: the launch form with the last values used."""

    nav_id = "apps"

    @web.authenticated
    @authorized
    async def get(self, app_id: str) -> None:
        sapp = self.sessions_app
        app = sapp.apps().get(app_id)
        if app is None:
            raise web.HTTPError(404, "No app %r", app_id)
        missing = sapp.app_missing(app)
        clusters = sapp.clusters()
        remembered = sapp.remembered_values(self.dashboard_app, app.id)
        remembered_cluster = remembered.pop("cluster", None)
        # ?cluster=<id>: the form was switched to another cluster (sessions.js reloads it)
        chosen = self.get_query_argument("cluster", None)
        cluster = (
            (sapp.cluster(chosen) if chosen else None)
            or sapp.cluster(remembered_cluster)
            or sapp.cluster(None)
        )
        partitions = await sapp.partitions(cluster) if cluster else []
        accounts = await sapp.accounts(cluster) if cluster else None
        local = cluster is not None and cluster.adapter != "slurm"
        values = form_values(app, remembered, partitions or [])
        self.render_sessions_page(
            "app_form.html",
            app=app,
            installed=missing is None,
            missing_command=missing,
            clusters=[{"id": c.id, "title": c.title} for c in clusters],
            cluster_id=cluster.id if cluster else "",
            local_cluster=local,
            scheduler_down=partitions is None,
            fields=field_models(app, values, partitions, accounts, local),
            fields_json=html_safe_json([f.name for f in app.fields]),
        )


class MySessionsHandler(SessionsPageHandler):
    """``sessions/``: the cards are filled and refreshed by sessions.js."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.render_sessions_page(
            "sessions.html", poll_ms=int(self.sessions_app.poll_interval * 1000)
        )


class AppsRedirectHandler(SessionsPageHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.redirect(url_path_join(self.base_url, self.request.path.rsplit("/", 1)[-1] + "/"))


default_handlers = [
    (r"/apps", AppsRedirectHandler),
    (r"/sessions", AppsRedirectHandler),
    (r"/apps/", CatalogueHandler),
    (rf"/apps/({APP_ID_RE})/new", AppFormHandler),
    (r"/sessions/", MySessionsHandler),
]
