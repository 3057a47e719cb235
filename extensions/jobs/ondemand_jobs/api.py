"""JSON API of the Jobs pages (docs/jobs.md). Replies are ``{"status": "ok", ...}`` or
``{"status": "error", "message": ..., "field"?: ...}`` with the message fit to show.

Active jobs, under ``{base_url}api/ondemand/jobs``:

* ``GET`` (``?scope=all`` where ``show_all_jobs``): the jobs squeue lists on every cluster, and
  the user's completed jobs from sacct (or why there are none).
* ``GET .../<cluster>/<id>``: ``scontrol show job``'s fields.
* ``POST .../<cluster>/<id>/cancel``: scancel, only of the user's own job.

The composer, under ``{base_url}api/ondemand/composer``:

* ``GET jobs``: the user's job folders with their last job's state. ``POST jobs``
  ``{"from": "template", "template": name}`` | ``{"from": "job", "job": n}`` |
  ``{"from": "directory", "path": abs, "script"?: name}``: a new job folder.
* ``PATCH jobs/<n>`` (title, cluster, partition, account, time_limit, script); ``DELETE
  jobs/<n>`` (refused while its job is queued or running); ``POST jobs/<n>/submit`` (sbatch)
  and ``POST jobs/<n>/stop`` (scancel).
* ``GET partitions?cluster=<id>``: the cluster's partitions for the settings form.
"""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ondemand_dashboard.api import PortalAPIHandler
from ondemand_hub.scheduler.slurm import (
    parse_sbatch,
    parse_scontrol_job,
    parse_squeue_fields,
    plain_state,
    run,
)
from ondemand_hub.scheduler.status import SchedulerUnavailable
from ondemand_hub.site.clusters import Cluster

from .composer import JOB_NUMBER_RE, ComposerError, check_settings, check_template_name
from .handlers import JobsMixin
from .rows import composer_job, history_row, is_active, job_row, last_job_state

#: What a job's output files are called (sbatch's default): not copied into a new job.
OUTPUT_FILES = re.compile(r"slurm-[0-9_]+\.out")
#: Words of sbatch's refusals (the job was not queued), as opposed to "could not ask".
UNREACHABLE = ("Unable to contact slurm controller", "timed out", "Socket timed out")


class JobsAPIBase(JobsMixin, PortalAPIHandler):
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ComposerError):
            self.set_status(exc.status)
            body: dict[str, Any] = {"status": "error", "message": exc.message}
            if exc.field:
                body["field"] = exc.field
            self.set_header("Content-Type", "application/json")
            self.finish(body)
        else:
            super().write_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ComposerError):
            self.log.info("%s %s: %s", self.request.method, self.request.path, value.message)
        else:
            super().log_exception(typ, value, tb)

    def json_body(self) -> dict[str, Any]:
        body = self.get_json_body() or {}
        if not isinstance(body, dict):
            raise ComposerError("Expected a JSON object")
        return body

    def known_cluster(self, cluster_id: str) -> Cluster:
        cluster = self.jobs_app.cluster(cluster_id) if cluster_id else None
        if cluster is None:
            raise ComposerError(f"No Slurm cluster {cluster_id!r}", 404, "cluster")
        return cluster

    async def ask_about_job(self, cluster: Cluster, job_id: str, argv: list[str]) -> str:
        """The output of a Slurm command about one job (squeue, scontrol), uncached; 404 for
        a job Slurm does not know, 503 when it does not answer."""
        app = self.jobs_app
        commands = app.slurm_commands(cluster)
        try:
            return await run(argv, commands.env(), app.command_timeout)
        except SchedulerUnavailable as e:
            if "Invalid job id" in str(e):
                raise ComposerError(f"No job {job_id} on {cluster.title}", 404) from None
            raise ComposerError(
                f"The scheduler of {cluster.title} does not answer: {e}", 503
            ) from None
        except OSError as e:
            raise ComposerError(f"Cannot run {argv[0]}: {e.strerror or e}", 503) from None

    async def squeue_one(self, cluster: Cluster, job_id: str) -> dict[str, str]:
        """The job as squeue shows it now (not cached: about to act on it)."""
        check_job_id(job_id)
        argv = self.jobs_app.slurm_commands(cluster).squeue_job(job_id)
        text = await self.ask_about_job(cluster, job_id, argv)
        job = parse_squeue_fields(text).get(job_id)
        if job is None:
            raise ComposerError(f"No job {job_id} on {cluster.title}", 404)
        return job

    async def cancel(self, cluster: Cluster, job_id: str) -> None:
        """scancel the user's own job: refused here for another user's (squeue's user), and
        Slurm refuses it too (its message is shown as it is)."""
        app, me = self.jobs_app, self.jobs_app.unix_user()
        job = await self.squeue_one(cluster, job_id)
        if job["user"] != me:
            self.log.warning("%s: refused to cancel job %s of %s", me, job_id, job["user"])
            raise ComposerError(
                f"Job {job_id} belongs to {job['user']}: you can cancel only your own jobs", 403
            )
        if not is_active(job["state"]):
            raise ComposerError(
                f"Job {job_id} has already ended ({plain_state(job['state'])})", 409
            )
        commands = app.slurm_commands(cluster)
        try:
            await run(commands.scancel(job_id), commands.env(), app.command_timeout)
        except SchedulerUnavailable as e:
            status = 503 if any(w in str(e) for w in UNREACHABLE) else 403
            raise ComposerError(f"Slurm did not cancel job {job_id}: {e}", status) from None
        finally:
            app.forget_jobs()
        self.log.info("%s: cancelled job %s on %s", me, job_id, cluster.id)


# --- Active jobs ------------------------------------------------------------------------------


class ActiveJobsHandler(JobsAPIBase):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        app = self.jobs_app
        everyone = self.get_query_argument("scope", "mine") == "all" and app.show_all_jobs
        clusters = app.clusters()
        caches = [app.job_cache(c, everyone) for c in clusters]
        await asyncio.gather(*(cache.refresh() for cache in caches))
        histories = await asyncio.gather(*(app.history(c) for c in clusters))
        me, folders = app.unix_user(), self.composer_folders()
        jobs, history, notes, states = [], [], [], []
        for cluster, cache, past in zip(clusters, caches, histories, strict=True):
            rows = app.job_rows(cluster, everyone)
            states.append(
                {
                    "id": cluster.id,
                    "title": cluster.title,
                    "scheduler": "unreachable" if cache.error else "ok",
                    "message": cache.error,
                    "accounting": past["available"],
                }
            )
            jobs.extend(job_row(cluster, row, me, folders) for row in rows.values())
            if past["available"]:
                history.extend(
                    history_row(cluster, job)
                    for job_id, job in past["jobs"].items()
                    if job_id not in rows and not is_active(job["State"])
                )
            else:
                notes.append({"cluster": cluster.id, "title": cluster.title, "note": past["note"]})
        jobs.sort(key=lambda r: (not r["active"], -_number(r["id"])))
        history.sort(key=lambda r: -_number(r["id"]))
        self.finish(
            {
                "status": "ok",
                "scope": "all" if everyone else "mine",
                "all_allowed": app.show_all_jobs,
                "user": me,
                "clusters": states,
                "jobs": jobs,
                "history": history,
                "history_notes": notes,
            }
        )

    def composer_folders(self) -> dict[str, str]:
        """Job id → composer job number, for every job the composer submitted."""
        folders = self.jobs_app.folders()
        ids = {}
        for number in folders.numbers():
            try:
                job = folders.read(number)
            except ComposerError:
                continue
            for submission in job["submissions"]:
                if isinstance(submission, dict) and isinstance(submission.get("id"), str):
                    ids[submission["id"]] = number
        return ids


class JobDetailsHandler(JobsAPIBase):
    @web.authenticated
    @authorized
    async def get(self, cluster_id: str, job_id: str) -> None:
        app = self.jobs_app
        cluster = self.known_cluster(cluster_id)
        check_job_id(job_id)
        argv = app.slurm_commands(cluster).scontrol_job(job_id)
        fields = parse_scontrol_job(await self.ask_about_job(cluster, job_id, argv))
        if not fields:
            raise ComposerError(f"No job {job_id} on {cluster.title}", 404)
        owner = fields.get("UserId", "").split("(", 1)[0]
        if owner != app.unix_user() and not app.show_all_jobs:
            raise ComposerError(f"Job {job_id} is not yours", 403)
        self.finish({"status": "ok", "cluster": cluster.id, "id": job_id, "fields": fields})


class JobCancelHandler(JobsAPIBase):
    @web.authenticated
    @authorized
    async def post(self, cluster_id: str, job_id: str) -> None:
        await self.cancel(self.known_cluster(cluster_id), job_id)
        self.finish({"status": "ok", "message": f"Job {job_id} cancelled"})


# --- the composer -----------------------------------------------------------------------------


class ComposerAPIBase(JobsAPIBase):
    async def models(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The composer's view of ``jobs``: one squeue (cached, shared) per cluster used."""
        app, folders = self.jobs_app, self.jobs_app.folders()
        clusters = {c.id: c for c in app.clusters()}
        default = next(iter(clusters.values()), None)
        used: dict[str, Cluster] = {}
        for job in jobs:
            last = job["submissions"][-1] if job["submissions"] else None
            cluster = clusters.get(last.get("cluster", "")) if isinstance(last, dict) else None
            if cluster is None and last:
                cluster = default
            if cluster is not None:
                used[cluster.id] = cluster
        caches = {cid: app.job_cache(c) for cid, c in used.items()}
        await asyncio.gather(*(cache.refresh() for cache in caches.values()))
        models = []
        for job in jobs:
            state = None
            last = job["submissions"][-1] if job["submissions"] else None
            if isinstance(last, dict):
                cluster = used.get(last.get("cluster", "")) or default
                if cluster is not None:
                    cache = caches[cluster.id]
                    rows = None if cache.error else app.job_rows(cluster)
                    history = (
                        await app.history(cluster)
                        if rows is not None and last["id"] not in rows
                        else {}
                    )
                    state = last_job_state(last, rows, history)
            models.append(composer_job(job, folders.path(job["number"]), self.base_url, state))
        return models

    async def model(self, number: str) -> dict[str, Any]:
        return (await self.models([self.jobs_app.folders().read(number)]))[0]

    async def fresh_last_state(self, job: dict[str, Any]) -> tuple[Cluster | None, dict | None]:
        """The cluster and squeue row of the job's last submission, asked now; (None, None)
        when it never was submitted. 503 when the scheduler does not answer."""
        last = job["submissions"][-1] if job["submissions"] else None
        if not isinstance(last, dict):
            return None, None
        app = self.jobs_app
        cluster = app.cluster(last.get("cluster")) or app.cluster(None)
        if cluster is None:
            return None, None
        cache = app.job_cache(cluster)
        await cache.refresh(force=True)
        if cache.error:
            raise ComposerError(
                f"Cannot tell whether job {last['id']} still runs: the scheduler of "
                f"{cluster.title} does not answer ({cache.error})",
                503,
            )
        return cluster, app.job_rows(cluster).get(last["id"])


class ComposerJobsHandler(ComposerAPIBase):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        folders = self.jobs_app.folders()
        jobs = []
        for number in reversed(folders.numbers()):
            try:
                jobs.append(folders.read(number))
            except ComposerError as e:  # a folder that is not (or no longer) a composer job
                if e.status != 404:
                    self.log.warning("composer: %s", e.message)
        self.finish({"status": "ok", "jobs": await self.models(jobs)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        source = body.get("from")
        if source == "template":
            files, settings = self.from_template(body.get("template"))
        elif source == "job":
            files, settings = self.from_job(body.get("job"))
        elif source == "directory":
            files, settings = self.from_directory(body.get("path"), body.get("script"))
        else:
            raise ComposerError("'from' must be 'template', 'job' or 'directory'", field="from")
        folders = self.jobs_app.folders()
        number = await asyncio.to_thread(folders.create, files, settings)
        self.log.info("%s: new composer job %s (%s)", self.jobs_app.unix_user(), number, source)
        self.set_status(201)
        self.finish({"status": "ok", "job": await self.model(number)})

    def from_template(self, name: object) -> tuple[list, dict[str, Any]]:
        template = self.jobs_app.templates().get(check_template_name(name))
        if template is None:
            raise ComposerError(f"No template {name!r}", 404, "template")
        files = self.jobs_app.folders().files_of(template.path)
        files = [(n, p) for n, p in files if n != "manifest.yml"]
        settings = {"title": template.title, "script": template.script}
        return files, {**settings, "source": f"template {template.name}"}

    def from_job(self, number: object) -> tuple[list, dict[str, Any]]:
        if not isinstance(number, str | int) or not re.fullmatch(JOB_NUMBER_RE, str(number)):
            raise ComposerError(f"No job {number!r}", 404, "job")
        folders = self.jobs_app.folders()
        job = folders.read(str(number))
        files = folders.files_of(folders.path(str(number)), skip=OUTPUT_FILES)
        keys = ("title", "script", "cluster", "partition", "account", "time_limit")
        settings = {k: job[k] for k in keys if isinstance(job.get(k), str)}
        return files, {**settings, "source": f"job {number}"}

    def from_directory(self, path: object, script: object) -> tuple[list, dict[str, Any]]:
        if not isinstance(path, str) or not os.path.isabs(path) or "\0" in path:
            raise ComposerError("Give the directory's absolute path", field="path")
        path = os.path.normpath(path)
        files = self.jobs_app.folders().files_of(path)
        names = [n for n, _ in files]
        if script in (None, ""):
            scripts = [n for n in names if n.endswith((".sh", ".sbatch", ".slurm"))]
            script = "job.sh" if "job.sh" in names else (scripts[0] if len(scripts) == 1 else None)
            if script is None:
                raise ComposerError(f"Which file of {path} is the job's script?", field="script")
        settings = check_settings({"script": script})
        if settings["script"] not in names:
            raise ComposerError(f"{path} has no file {settings['script']}", field="script")
        title = os.path.basename(path.rstrip("/"))[:100] or "Job"
        return files, {"title": title, **settings, "source": f"directory {path}"}


class ComposerJobHandler(ComposerAPIBase):
    @web.authenticated
    @authorized
    async def get(self, number: str) -> None:
        self.finish({"status": "ok", "job": await self.model(number)})

    @web.authenticated
    @authorized
    async def patch(self, number: str) -> None:
        folders = self.jobs_app.folders()
        job = folders.read(number)
        settings = check_settings(self.json_body())
        if settings.get("cluster") and self.jobs_app.cluster(settings["cluster"]) is None:
            raise ComposerError(f"No Slurm cluster {settings['cluster']!r}", field="cluster")
        job.update(settings)
        folders.write(number, job)
        self.finish({"status": "ok", "job": await self.model(number)})

    @web.authenticated
    @authorized
    async def delete(self, number: str) -> None:
        folders = self.jobs_app.folders()
        job = folders.read(number)
        _cluster, row = await self.fresh_last_state(job)
        if row is not None and is_active(row["state"]):
            raise ComposerError(
                f"Job {row['id']} of this folder is {plain_state(row['state'])}: stop it "
                "before deleting its folder",
                409,
            )
        await asyncio.to_thread(folders.delete, number)
        self.log.info("%s: deleted composer job %s", self.jobs_app.unix_user(), number)
        self.finish({"status": "ok"})


class ComposerActionHandler(ComposerAPIBase):
    @web.authenticated
    @authorized
    async def post(self, number: str, action: str) -> None:
        job = self.jobs_app.folders().read(number)
        if action == "stop":
            await self.stop(job)
        else:
            await self.submit(job)
        self.finish({"status": "ok", "job": await self.model(number)})

    async def stop(self, job: dict[str, Any]) -> None:
        cluster, row = await self.fresh_last_state(job)
        if cluster is None or row is None or not is_active(row["state"]):
            raise ComposerError("This job is not queued or running", 409)
        await self.cancel(cluster, row["id"])

    async def submit(self, job: dict[str, Any]) -> None:
        app, folders = self.jobs_app, self.jobs_app.folders()
        _cluster, row = await self.fresh_last_state(job)
        if row is not None and is_active(row["state"]):
            raise ComposerError(
                f"Job {row['id']} of this folder is still {plain_state(row['state'])}", 409
            )
        cluster = app.cluster(job.get("cluster") or None)
        if cluster is None:
            raise ComposerError("No Slurm cluster to submit to", 400, "cluster")
        folder = folders.path(job["number"])
        script = os.path.join(folder, job.get("script") or "job.sh")
        if not os.path.isfile(script) or os.path.islink(script):
            name = os.path.basename(script)
            raise ComposerError(f"The script {name} is missing from {folder}", 400, "script")
        commands = app.slurm_commands(cluster)
        argv = commands.sbatch_file(
            script,
            folder,
            partition=job.get("partition", ""),
            account=job.get("account", ""),
            time_limit=job.get("time_limit", ""),
        )
        job_id = await self.sbatch(argv, commands.env())
        app.forget_jobs()
        submitted = datetime.now(UTC).isoformat(timespec="seconds")
        job["submissions"].append({"id": job_id, "cluster": cluster.id, "submitted": submitted})
        folders.write(job["number"], job)
        self.log.info("%s: submitted composer job %s as %s", app.unix_user(), job["number"], job_id)

    async def sbatch(self, argv: list[str], env: dict[str, str]) -> str:
        """Run sbatch; its job id, or ComposerError with all of sbatch's own message."""
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.jobs_app.submit_timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ComposerError(
                "sbatch did not answer in time; the job may still have been queued: look at "
                "Active jobs before submitting again",
                504,
            ) from None
        message = sbatch_message(err.decode(errors="replace")) or f"sbatch exit {proc.returncode}"
        if proc.returncode != 0:
            status = 503 if any(w in message for w in UNREACHABLE) else 400
            raise ComposerError(message, status)
        try:
            return parse_sbatch(out.decode(errors="replace"))
        except SchedulerUnavailable as e:
            raise ComposerError(str(e), 502) from None


class PartitionsHandler(JobsAPIBase):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        cluster = self.known_cluster(self.get_query_argument("cluster", ""))
        parts = await self.jobs_app.partitions(cluster)
        if parts is None:
            raise ComposerError(f"The scheduler of {cluster.title} does not answer", 503)
        self.finish(
            {
                "status": "ok",
                "partitions": [
                    {"name": p.name, "default": p.default, "max_time": p.max_time}
                    for p in parts
                    if p.available
                ],
            }
        )


def sbatch_message(stderr: str) -> str:
    """sbatch's error lines as one message, its "sbatch: error: " said once: it splits one
    sentence over several lines ("...The first" / "line must start with #!...")."""
    prefix = "sbatch: error: "
    lines = [" ".join(line.split()) for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    words = " ".join(line.removeprefix(prefix) for line in lines)
    return prefix + words if lines[0].startswith(prefix) else words


def check_job_id(job_id: str) -> str:
    if not re.fullmatch(r"[0-9]{1,12}", job_id):
        raise ComposerError(f"Not a Slurm job id: {job_id!r}", 404)
    return job_id


def _number(job_id: str) -> int:
    digits = job_id.split("_", 1)[0]
    return int(digits) if digits.isdigit() else 0


default_handlers = [
    (r"/api/ondemand/jobs", ActiveJobsHandler),
    # names are checked in the handlers, so a wrong one gets a message, not a bare 404
    (r"/api/ondemand/jobs/([^/]+)/([^/]+)", JobDetailsHandler),
    (r"/api/ondemand/jobs/([^/]+)/([^/]+)/cancel", JobCancelHandler),
    (r"/api/ondemand/composer/jobs", ComposerJobsHandler),
    (r"/api/ondemand/composer/jobs/([^/]+)", ComposerJobHandler),
    (r"/api/ondemand/composer/jobs/([^/]+)/(submit|stop)", ComposerActionHandler),
    (r"/api/ondemand/composer/partitions", PartitionsHandler),
]
