"""Clusters: ``clusters.d/*.yml`` drop-ins (Open OnDemand's v2 format, a subset) parsed into
validated objects.

An OOD admin's file works unchanged when it uses these keys::

    v2:
      metadata:
        title: "Owens"          # shown in forms; default: the file name
        hidden: false           # hidden clusters are not offered in forms
      login:
        host: "owens.example.edu"
      job:
        adapter: "slurm"        # or "local": apps run as processes of the user on the portal host
        cluster: "owens"        # Slurm's cluster name (-M); optional
        bin: "/usr/bin"         # where sbatch, squeue... live; default: found on PATH
        conf: "/etc/slurm/slurm.conf"   # SLURM_CONF; optional

``cluster``, ``bin`` and ``conf`` are Slurm's: a local cluster (docs/local-cluster.md) refuses
them rather than ignore them.

The cluster's id is the file name without ``.yml``. With no cluster configured, the portal has
one built-in cluster, ``local``. Unknown keys are errors naming the file and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dropin import SiteFileError, check_keys, list_dropins, parse_yaml, read_site_text

CLUSTER_ID = re.compile(r"[a-z][a-z0-9_-]{0,31}")
ADAPTERS = ("slurm", "local")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")
_SLURM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ClusterError(SiteFileError):
    """A cluster file is invalid: the message names the file, the key and what was expected."""


@dataclass(frozen=True)
class Cluster:
    """One cluster the portal submits to."""

    id: str
    title: str
    adapter: str  # "slurm" or "local"
    login_host: str | None = None
    slurm_cluster: str | None = None
    bin_dir: str | None = None
    conf: str | None = None
    hidden: bool = False


def default_clusters_dir() -> str:
    """``$ONDEMAND_HUB_CLUSTERS_DIR``, else ``/etc/ondemand-hub/clusters.d``: the default of both
    the hub's session spawner and the PUN's sessions pages."""
    return os.environ.get("ONDEMAND_HUB_CLUSTERS_DIR", "/etc/ondemand-hub/clusters.d")


LOCAL_CLUSTER = Cluster(id="local", title="This portal host", adapter="local")


def _section(path: Path, data: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> dict:
    value = data.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ClusterError(f"{path}: key 'v2.{key}': expected a mapping, got {value!r}")
    return check_keys(path, value, allowed, prefix=f"v2.{key}.", error=ClusterError)


def _string(path: Path, key: str, value: Any, pattern: re.Pattern | None = None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ClusterError(f"{path}: key {key!r}: expected a non-empty string, got {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise ClusterError(f"{path}: key {key!r}: {value!r} is not a valid value")
    return value


def _absolute(path: Path, key: str, value: Any) -> str | None:
    text = _string(path, key, value)
    if text is not None and not text.startswith("/"):
        raise ClusterError(f"{path}: key {key!r}: expected an absolute path, got {text!r}")
    return text


def parse_cluster(path: Path, text: str) -> Cluster:
    """One cluster file; :class:`ClusterError` says what is wrong with it."""
    cluster_id = path.stem
    if not CLUSTER_ID.fullmatch(cluster_id):
        raise ClusterError(
            f"{path}: the file name must be a cluster id: lowercase letters, digits, - and _"
        )
    data = parse_yaml(path, text, ClusterError)
    if not isinstance(data, Mapping) or not isinstance(data.get("v2"), Mapping):
        raise ClusterError(f"{path}: expected a mapping with key 'v2'")
    check_keys(path, data, ("v2",), error=ClusterError)
    v2 = check_keys(path, data["v2"], ("metadata", "login", "job"), "v2.", ClusterError)
    meta = _section(path, v2, "metadata", ("title", "hidden"))
    login = _section(path, v2, "login", ("host",))
    job = _section(path, v2, "job", ("adapter", "cluster", "bin", "conf"))
    adapter = job.get("adapter")
    if adapter not in ADAPTERS:
        raise ClusterError(
            f"{path}: key 'v2.job.adapter': expected one of {', '.join(ADAPTERS)}, got {adapter!r}"
        )
    slurm_only = [k for k in ("cluster", "bin", "conf") if adapter != "slurm" and k in job]
    if slurm_only:
        raise ClusterError(
            f"{path}: key 'v2.job.{slurm_only[0]}': only for adapter slurm, not {adapter!r}"
        )
    hidden = meta.get("hidden", False)
    if not isinstance(hidden, bool):
        raise ClusterError(f"{path}: key 'v2.metadata.hidden': expected true or false")
    return Cluster(
        id=cluster_id,
        title=_string(path, "v2.metadata.title", meta.get("title")) or cluster_id,
        adapter=adapter,
        login_host=_string(path, "v2.login.host", login.get("host"), _HOST),
        slurm_cluster=_string(path, "v2.job.cluster", job.get("cluster"), _SLURM_NAME),
        bin_dir=_absolute(path, "v2.job.bin", job.get("bin")),
        conf=_absolute(path, "v2.job.conf", job.get("conf")),
        hidden=hidden,
    )


def load_clusters(directory: Path | str) -> tuple[list[Cluster], list[str]]:
    """Every valid cluster of ``directory`` (sorted by id) and one error string per bad file;
    the built-in ``local`` cluster when the directory holds none."""
    paths, errors = list_dropins(Path(directory), (".yml", ".yaml"), "clusters")
    clusters = []
    for path in paths:
        try:
            clusters.append(parse_cluster(path, read_site_text(path)))
        except FileNotFoundError:
            continue
        except SiteFileError as e:
            errors.append(str(e))
    if not clusters and not errors:
        clusters = [LOCAL_CLUSTER]
    return clusters, errors
