"""Active jobs (all clusters) and the job composer: configuration, and the scheduler answers
every page and tab of this PUN shares (one ``squeue`` per cluster per interval, one ``sacct``
per ``history_interval``)."""

from __future__ import annotations

import os
from typing import Any

from traitlets import Bool, Float, List, Unicode, default

from ondemand_dashboard.portalapp import PortalExtensionApp
from ondemand_hub.scheduler.slurm import (
    parse_squeue,
    parse_squeue_fields,
    run,
)
from ondemand_hub.scheduler.status import JobStatus, SchedulerUnavailable, StatusCache
from ondemand_hub.site.clusters import Cluster

from . import api, handlers
from .composer import JobFolders, JobTemplate, load_templates
from .paths import BUNDLED_JOB_TEMPLATES_DIR, STATIC_DIR, TEMPLATES_DIR

#: Where sites put their composer templates (one directory per template).
SITE_JOB_TEMPLATES_DIR = "/etc/ondemand-hub/templates"


class JobsExtensionApp(PortalExtensionApp):
    """Active jobs (all clusters) and the job composer."""

    name = "ondemand_jobs"
    extension_url = "/jobs/"
    package_templates_dir = TEMPLATES_DIR
    package_static_dir = STATIC_DIR

    show_all_jobs = Bool(
        False,
        help="""Let users list every user's jobs on Active jobs ("All jobs"), not only their own.

        Off by default: squeue of every job is heavier on slurmctld and shows other users' job
        names. Cancel stays limited to the user's own jobs either way (and Slurm refuses the
        others). Set True on a site whose Slurm shows all jobs anyway (no ``PrivateData=jobs``).
        """,
    ).tag(config=True)

    template_dirs = List(
        Unicode(),
        help="""Directories of composer templates; a later one's template replaces an earlier
        one's of the same name. Default: the bundled templates, then
        ``/etc/ondemand-hub/templates``, e.g. ``["/srv/hpc/job-templates"]``.""",
    ).tag(config=True)

    jobs_dir = Unicode(
        "~/ondemand/jobs",
        help="The folder holding the composer's jobs, one numbered folder each (``~`` is the "
        "user's home). Default ``~/ondemand/jobs``, next to the sessions' folders.",
    ).tag(config=True)

    poll_interval = Float(5.0, help="Seconds between refreshes of the Jobs pages.").tag(config=True)

    submit_timeout = Float(
        30.0,
        help="Seconds sbatch may take. On a timeout the job may still have been queued: the "
        "composer says so and never submits again by itself.",
    ).tag(config=True)

    max_copy_bytes = Float(
        64 * 1024 * 1024,
        help="Bytes a new job may copy from a template, a job or a directory (64 MiB): a job "
        "folder holds scripts and inputs, not data sets.",
    ).tag(config=True)

    @default("template_dirs")
    def _default_template_dirs(self) -> list[str]:
        return [BUNDLED_JOB_TEMPLATES_DIR, SITE_JOB_TEMPLATES_DIR]

    def initialize_settings(self) -> None:
        self._job_caches: dict[tuple[Cluster, bool], StatusCache] = {}
        self._rows: dict[tuple[Cluster, bool], dict[str, dict[str, str]]] = {}

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers.default_handlers)
        self.handlers.extend(api.default_handlers)

    # -- site content ------------------------------------------------------------------------

    def clusters(self) -> list[Cluster]:
        """The visible Slurm clusters (a local cluster has no jobs to list or submit)."""
        return [c for c in super().clusters() if c.adapter == "slurm"]

    def templates(self) -> dict[str, JobTemplate]:
        templates, errors = load_templates(self.template_dirs)
        for error in errors:
            self.log.warning("job templates: %s", error)
        return templates

    def folders(self) -> JobFolders:
        return JobFolders(os.path.expanduser(self.jobs_dir), int(self.max_copy_bytes))

    # -- what Slurm says, shared ---------------------------------------------------------------

    def job_cache(self, cluster: Cluster, everyone: bool = False) -> StatusCache:
        """The shared squeue answer of ``cluster``: the user's jobs, or every job
        (``everyone``, only when ``show_all_jobs``). :meth:`job_rows` has every field."""
        key = (cluster, everyone and self.show_all_jobs)
        cache = self._job_caches.get(key)
        if cache is None:
            commands = self.slurm_commands(cluster)
            argv = commands.squeue_all() if key[1] else commands.squeue_user(self.unix_user())

            async def query() -> dict[str, JobStatus]:
                try:
                    text = await run(argv, commands.env(), timeout=self.command_timeout)
                except OSError as e:
                    raise SchedulerUnavailable(f"cannot run squeue: {e.strerror or e}") from None
                self._rows[key] = parse_squeue_fields(text)
                return parse_squeue(text)

            cache = self._job_caches[key] = StatusCache(query, self.job_status_interval)
        return cache

    def job_rows(self, cluster: Cluster, everyone: bool = False) -> dict[str, dict[str, str]]:
        """Every squeue field of the jobs of :meth:`job_cache`'s last answer."""
        if self._job_caches[(cluster, everyone and self.show_all_jobs)].error is not None:
            return {}
        return self._rows.get((cluster, everyone and self.show_all_jobs), {})

    def forget_jobs(self) -> None:
        """After a submit, cancel or delete: the next refresh asks squeue again."""
        for cache in self._job_caches.values():
            cache.invalidate()

    async def history(self, cluster: Cluster) -> dict[str, Any]:
        """The user's completed jobs of the last 7 days from sacct (the PUN's shared answer):
        ``{"available": True, "jobs": {id: fields}}``, or ``{"available": False, "note":
        sacct's message}`` where there is no accounting (no slurmdbd: "Slurm accounting
        storage is disabled")."""
        answer = await self.slurm_history(cluster)
        if answer.available:
            return {"available": True, "jobs": answer.jobs}
        return {"available": False, "note": answer.note}
