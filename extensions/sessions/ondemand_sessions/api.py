"""JSON API of the sessions extension (all under ``{base_url}api/ondemand/sessions``):

* ``GET``: ``{"status": "ok", "sessions": [card, ...]}``, one card per named server, with what
  the scheduler says about its job (:mod:`.jobs`; the fields are in docs/sessions.md).
* ``POST`` ``{"app": id, "cluster": id?, <field>: value, ...}``: validated here first (400
  ``{"status": "error", "field": ..., "message": ...}``, nothing sent to the hub), then started
  through the hub as a new named server ``<app>-<n>``; ``{"status": "ok", "name": ...}``.
* ``POST .../<name>/stop``: stop (scancel by the spawner); ``POST .../<name>/relaunch``: a new
  session with the same ``user_options``; ``DELETE .../<name>``: stop and remove.
* ``GET .../<name>/log``: the last lines of the session's ``output.log``
  ``{"status": "ok", "exists": bool, "text", "truncated", "size", "modified"}``; 404 for a
  session the hub does not have.
* ``GET .../<name>/thumbnail``: the session's ``thumbnail.png`` (no-cache, ETag), 404 when
  there is none.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ondemand_dashboard.api import PortalAPIHandler
from ondemand_dashboard.paths import hub_page_url
from ondemand_hub.site.apps import App, FormError, validate_options
from ondemand_hub.site.clusters import Cluster

from .handlers import SessionsMixin
from .hub import SERVER_NAME, HubClient, HubError, server_name
from .jobs import find_session_job, job_name, job_summary
from .sessionfiles import read_thumbnail, session_path, tail_log, thumbnail_version

NAME_RE = r"[a-z][a-z0-9-]{0,29}"


def session_state(model: dict[str, Any]) -> str:
    if model.get("ready"):
        return "running"
    if model.get("pending") == "spawn":
        return "starting"
    if model.get("pending") == "stop":
        return "stopping"
    return "stopped"


def hub_progress_url(user: str, name: str) -> str:
    """JupyterHub's page for a starting server: a progress bar fed by the session spawner's
    ``progress()`` (queued, its place in line and expected start, starting, up), which goes on
    to the session when it is ready."""
    return hub_page_url("spawn-pending", quote(user, safe=""), quote(name, safe=""))


def session_card(
    name: str,
    model: dict[str, Any],
    apps: dict[str, App],
    base_url: str,
    home: str,
    user: str = "",
) -> dict[str, Any]:
    """What the My sessions page shows for one hub server model."""
    options = model.get("user_options") or {}
    app_id = options.get("app") if isinstance(options.get("app"), str) else None
    app = apps.get(app_id or "")
    state = session_state(model)
    return {
        "name": name,
        "app": app_id,
        "title": app.title if app else (app_id or name),
        "icon": app.icon if app else "window",
        "state": state,
        "message": {
            "running": "Ready",
            "starting": "Queued or starting",
            "stopping": "Stopping",
            "stopped": "Stopped",
        }[state],
        "connect_url": model.get("url") if state == "running" else None,
        "progress_url": hub_progress_url(user, name) if state == "starting" and user else None,
        "started": model.get("started"),
        "last_activity": model.get("last_activity"),
        "user_options": options,
        "folder_url": url_path_join(
            base_url, f"files/fs{quote(home)}/ondemand/sessions/{quote(name)}/"
        ),
    }


#: The message of a starting session once its job is known.
STARTING_MESSAGES = {
    "PENDING": "Queued",
    "CONFIGURING": "Starting: its node is being set up",
    "RUNNING": "Starting: the job runs, the app is starting",
}


class SessionsAPIBase(SessionsMixin, PortalAPIHandler):
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, HubError):
            self.set_status(exc.status)
            self.finish_error(exc.message, exc.field)
        elif isinstance(exc, FormError):
            self.set_status(400)
            self.finish_error(exc.message, exc.field)
        else:
            super().write_error(status_code, **kwargs)

    def finish_error(self, message: str, field: str | None = None) -> None:
        body: dict[str, Any] = {"status": "error", "message": message}
        if field:
            body["field"] = field
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, HubError | FormError):
            self.log.info("%s %s: %s", self.request.method, self.request.path, value)
        else:
            super().log_exception(typ, value, tb)

    def hub(self) -> HubClient:
        return HubClient.from_environ(self.current_user.username)

    def taken_names(self, servers: dict[str, Any]) -> set[str]:
        """Server names in use, and old session folders (never reused)."""
        taken = set(servers)
        try:
            taken.update(os.listdir(os.path.expanduser("~/ondemand/sessions")))
        except OSError:
            pass
        return taken

    async def launch(self, client: HubClient, app_id: str, user_options: dict[str, Any]) -> str:
        servers = await client.servers()
        name = server_name(app_id, self.taken_names(servers))
        await client.start(name, user_options)
        self.log.info("%s: started session %s (%s)", client.user, name, app_id)
        return name

    def launched(self, name: str) -> None:
        urls = self.urls()
        self.set_status(201)
        self.finish({"status": "ok", "name": name, "sessions_url": urls["sessions"]})


class SessionsHandler(SessionsAPIBase):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        servers = await self.hub().servers()
        apps = self.sessions_app.apps()
        home = os.path.expanduser("~")
        user = self.current_user.username
        cards = [session_card(n, m, apps, self.base_url, home, user) for n, m in servers.items()]
        cards.sort(key=lambda c: (c["started"] or "", c["name"]), reverse=True)
        await self.add_jobs(cards)
        for card in cards:
            card.update(self.file_urls(card["name"]))
        self.finish({"status": "ok", "sessions": cards})

    def file_urls(self, name: str) -> dict[str, str | None]:
        base = url_path_join(self.base_url, "api/ondemand/sessions", name)
        version = thumbnail_version(session_path(name, "thumbnail.png"))
        thumbnail = f"{base}/thumbnail?v={version}" if version else None
        return {"log_url": f"{base}/log", "thumbnail_url": thumbnail}

    async def add_jobs(self, cards: list[dict[str, Any]]) -> None:
        """Add ``cluster``, ``scheduler`` and ``job`` to each card: one shared squeue answer per
        cluster for all of them (and for every other tab)."""
        sapp = self.sessions_app
        clusters = {c.id: c for c in sapp.clusters()}
        default = next(iter(clusters.values()), None)
        groups: dict[Cluster, list[dict[str, Any]]] = {}
        for card in cards:
            cluster_id = card["user_options"].get("cluster")
            cluster = clusters.get(cluster_id) if isinstance(cluster_id, str) else default
            card.update(cluster=cluster.id if cluster else None, scheduler=None, job=None)
            if cluster is not None and cluster.adapter == "slurm" and card["app"]:
                groups.setdefault(cluster, []).append(card)
        caches = {cluster: sapp.job_cache(cluster) for cluster in groups}
        await asyncio.gather(*(cache.refresh() for cache in caches.values() if cache))
        user = sapp.unix_user()
        for cluster, group in groups.items():
            cache = caches[cluster]
            if cache is None:
                continue
            for card in group:
                if cache.error is not None:
                    card["scheduler"] = "unreachable"
                    continue
                card["scheduler"] = "ok"
                name = job_name(card["app"], card["name"])
                job = find_session_job(cache.jobs, name, user)
                if job is None and card["state"] == "stopped":
                    job = find_session_job(await sapp.job_history(cluster), name, user)
                if job is not None:
                    card["job"] = job_summary(job, cache.jobs)
                    card["started"] = card["started"] or card["job"]["started"]
                    if card["state"] == "starting":
                        card["message"] = STARTING_MESSAGES.get(job.state, card["message"])

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.get_json_body()
        if not isinstance(body, dict):
            raise FormError("app", "expected a JSON object of form values")
        options = dict(body)
        app_id = options.pop("app", None)
        cluster_id = options.pop("cluster", None)
        sapp = self.sessions_app
        app = sapp.apps().get(app_id) if isinstance(app_id, str) else None
        if app is None:
            raise FormError("app", f"unknown app {app_id!r}")
        if sapp.app_missing(app):
            raise FormError("app", f"{app.title} is not installed on this cluster")
        if cluster_id is not None and not isinstance(cluster_id, str):
            raise FormError("cluster", "expected a cluster id")
        cluster = sapp.cluster(cluster_id)
        if cluster is None:
            raise FormError("cluster", f"unknown cluster {cluster_id!r}")
        partitions = await sapp.partitions(cluster)
        if partitions is None:
            # The scheduler did not answer: check everything else; the hub checks again.
            try:
                validate_options(app, {k: v for k, v in options.items() if k != "bc_queue"}, [])
            except FormError as e:
                if e.field not in ("bc_queue", "bc_num_gpus", "bc_num_nodes"):
                    raise
        else:
            validate_options(app, options, partitions)
        user_options = {"app": app.id, **({"cluster": cluster_id} if cluster_id else {})}
        user_options.update(options)
        name = await self.launch(self.hub(), app.id, user_options)
        sapp.remember_values(
            self.dashboard_app, app.id, {k: v for k, v in user_options.items() if k != "app"}
        )
        self.launched(name)


class SessionHandler(SessionsAPIBase):
    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.hub().stop(name, remove=True)
        self.sessions_app.forget_jobs()
        self.log.info("%s: deleted session %s", self.current_user.username, name)
        self.finish({"status": "ok"})


class SessionActionHandler(SessionsAPIBase):
    @web.authenticated
    @authorized
    async def post(self, name: str, action: str) -> None:
        client = self.hub()
        if action == "stop":
            await client.stop(name)
            self.sessions_app.forget_jobs()
            self.log.info("%s: stopped session %s", client.user, name)
            self.finish({"status": "ok"})
            return
        model = (await client.servers()).get(name)
        if model is None or not SERVER_NAME.fullmatch(name):
            raise HubError(404, f"No session {name!r}")
        options = model.get("user_options") or {}
        app_id = options.get("app")
        if not isinstance(app_id, str):
            raise HubError(400, f"Session {name!r} has no app to relaunch")
        self.launched(await self.launch(client, app_id, dict(options)))


class SessionLogHandler(SessionsAPIBase):
    """The end of a session's ``output.log`` (the job's stdout and stderr)."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        if name not in await self.hub().servers():
            raise HubError(404, f"No session {name!r}")
        tail = await asyncio.to_thread(tail_log, session_path(name, "output.log"))
        modified = datetime.fromtimestamp(tail.modified, UTC).isoformat() if tail.modified else None
        self.set_header("Cache-Control", "no-store")
        self.finish(
            {
                "status": "ok",
                "name": name,
                "exists": tail.exists,
                "text": tail.text,
                "truncated": tail.truncated,
                "size": tail.size,
                "modified": modified,
            }
        )


class SessionThumbnailHandler(SessionsAPIBase):
    """A session's ``thumbnail.png``: only the user's own file, so no hub round trip (the
    cards, which come from the hub, only link it for existing sessions)."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        found = await asyncio.to_thread(read_thumbnail, session_path(name, "thumbnail.png"))
        if found is None:
            raise web.HTTPError(404, "Session %r has no thumbnail", name)
        data, version = found
        etag = f'"{version}"'
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("ETag", etag)
        if etag in self.request.headers.get("If-None-Match", ""):
            self.set_status(304)
            self.finish()
            return
        self.finish(data, set_content_type="image/png")


default_handlers = [
    (r"/api/ondemand/sessions", SessionsHandler),
    (rf"/api/ondemand/sessions/({NAME_RE})", SessionHandler),
    (rf"/api/ondemand/sessions/({NAME_RE})/(stop|relaunch)", SessionActionHandler),
    (rf"/api/ondemand/sessions/({NAME_RE})/log", SessionLogHandler),
    (rf"/api/ondemand/sessions/({NAME_RE})/thumbnail", SessionThumbnailHandler),
]
