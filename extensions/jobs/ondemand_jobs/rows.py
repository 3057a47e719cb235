"""Pure builders of what the Jobs pages show: a row of Active jobs from squeue's fields, a
completed job from sacct's, and a composer job with the state of its last submission."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from jupyter_server.utils import url_path_join

from ondemand_hub.scheduler.slurm import (
    format_time_left,
    job_ending,
    plain_reason,
    plain_state,
)
from ondemand_hub.scheduler.status import JobStatus
from ondemand_hub.site.clusters import Cluster


def is_active(state: str) -> bool:
    """Queued or running (anything that can still be cancelled), in squeue's long names."""
    status = JobStatus(job_id="", state=state)
    return status.is_pending or status.is_running or state == "REQUEUE_HOLD"


def files_url(base_url: str, kind: str, path: str) -> str:
    """The Files app's page of ``path``: ``fs`` (a folder) or ``edit`` (the editor)."""
    return url_path_join(base_url, f"files/{kind}{quote(path)}")


def job_row(
    cluster: Cluster, job: dict[str, str], user: str, folders: dict[str, str]
) -> dict[str, Any]:
    """One row of Active jobs. ``folders``: job id → composer job number, for the user's
    jobs submitted from the composer."""
    state = job["state"]
    pending = state == "PENDING"
    mine = job["user"] == user
    return {
        "cluster": cluster.id,
        "cluster_title": cluster.title,
        "id": job["id"],
        "name": job["name"],
        "user": job["user"],
        "account": job["account"] or None,
        "partition": job["partition"],
        "state": state,
        "state_text": plain_state(state),
        "active": is_active(state),
        "elapsed": job["elapsed"] or None,
        "time_limit": job["time_limit"] or None,
        "time_left": (format_time_left(job["time_left"]) or None) if is_active(state) else None,
        "nodes": job["nodes"] or None,
        "cpus": job["cpus"] or None,
        "node_list": job["node_list"] or None,
        "reason": (job["reason"] or None) if pending else None,
        "reason_text": (plain_reason(job["reason"]) or None) if pending else None,
        "submitted": job["submitted"] or None,
        "start": job["start"] or None,
        "mine": mine,
        "cancellable": mine and is_active(state) and job["id"].isdigit(),
        "composer_job": folders.get(job["id"]) if mine else None,
    }


def history_row(cluster: Cluster, job: dict[str, str]) -> dict[str, Any]:
    """A completed job from sacct (``parse_sacct``'s fields)."""
    return {
        "cluster": cluster.id,
        "cluster_title": cluster.title,
        "id": job["JobID"],
        "name": job["JobName"],
        "state": job["State"],
        "state_text": job_ending(job["State"], job["ExitCode"]),
        "exit_code": job["ExitCode"] or None,
        "start": job["Start"] or None,
        "end": job["End"] or None,
        "elapsed": job["Elapsed"] or None,
        "node_list": job["NodeList"] or None,
    }


def last_job_state(
    submission: dict[str, Any], rows: dict[str, dict[str, str]] | None, history: dict[str, Any]
) -> dict[str, Any]:
    """The state of a composer job's last submission: from squeue's ``rows`` (None: the
    scheduler did not answer), else sacct's ``history``, else "no longer listed"."""
    job_id = submission["id"]
    if rows is None:
        return {"state": "UNKNOWN", "state_text": "unknown: the scheduler does not answer"}
    if job_id in rows:
        state = rows[job_id]["state"]
        return {"state": state, "state_text": plain_state(state), "active": is_active(state)}
    ended = history.get("jobs", {}).get(job_id) if history.get("available") else None
    if ended:
        return {
            "state": ended["State"],
            "state_text": job_ending(ended["State"], ended["ExitCode"]),
        }
    return {"state": "ENDED", "state_text": "ended (Slurm no longer lists it)"}


def composer_job(
    job: dict[str, Any],
    folder: str,
    base_url: str,
    state: dict[str, Any] | None,
) -> dict[str, Any]:
    """A composer job as the composer page shows it; ``state``: its last job's, or None."""
    script = os.path.join(folder, job.get("script") or "job.sh")
    submissions = job.get("submissions") or []
    last = dict(submissions[-1]) if submissions else None
    if last is not None:
        last.update({"active": False, **(state or {})})
        output = os.path.join(folder, f"slurm-{last['id']}.out")
        last["output_url"] = files_url(base_url, "edit", output) if os.path.isfile(output) else None
    return {
        "number": job["number"],
        "title": job.get("title") or f"Job {job['number']}",
        "script": job.get("script") or "job.sh",
        "script_exists": os.path.isfile(script) and not os.path.islink(script),
        "cluster": job.get("cluster", ""),
        "partition": job.get("partition", ""),
        "account": job.get("account", ""),
        "time_limit": job.get("time_limit", ""),
        "source": job.get("source", ""),
        "created": job.get("created"),
        "folder": folder,
        "folder_url": files_url(base_url, "fs", folder + "/"),
        "script_url": files_url(base_url, "edit", script),
        "last_job": last,
        "submissions": [s.get("id") for s in submissions],
    }
