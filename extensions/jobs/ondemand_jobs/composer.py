"""The job composer's files: templates (``<dir>/<name>/manifest.yml`` and a script) and the
user's job folders (``~/ondemand/jobs/<n>/``, each with its script and ``.ondemand-job.json``).

The PUN runs as the user, so these are plain file operations with the user's own rights. A new
job is built in a hidden temporary folder and renamed to its number when complete: a failed
copy leaves nothing behind, and two tabs never get the same number. Copies take regular files
only, never through a symlink, and at most ``max_bytes`` in all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ondemand_hub.scheduler.slurm import ACCOUNT_RE, TIME_LIMIT_RE
from ondemand_hub.site.dropin import SiteFileError, check_keys, parse_yaml, read_site_text

#: Template directory names: no ``/``, no leading dot, so never ``..``.
TEMPLATE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: Job folder names (numbers from 1).
JOB_NUMBER_RE = r"[1-9][0-9]{0,8}"
#: Script file names inside a job folder.
SCRIPT_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")
PARTITION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
#: The composer's own file in each job folder.
META_FILE = ".ondemand-job.json"
MAX_META_BYTES = 256 * 1024
MAX_FILES = 200


class ComposerError(Exception):
    """A request the composer refuses: ``message`` is shown to the user as it is."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


class TemplateError(SiteFileError):
    """A template directory is invalid: the message names the file and the key."""


@dataclass(frozen=True)
class JobTemplate:
    """A composer template: a directory whose files a new job starts from."""

    name: str
    title: str
    description: str
    script: str
    path: str


def check_template_name(name: object) -> str:
    if not isinstance(name, str) or not TEMPLATE_NAME_RE.fullmatch(name):
        raise ComposerError(f"Not a template name: {name!r}", field="template")
    return name


def read_template(directory: Path) -> JobTemplate:
    """The template in ``directory``; :class:`TemplateError` when its manifest is invalid."""
    path = directory / "manifest.yml"
    try:
        data = parse_yaml(path, read_site_text(path), TemplateError)
    except FileNotFoundError:
        raise TemplateError(f"{path}: missing") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: expected a mapping")
    data = check_keys(path, data, ("title", "description", "script"), error=TemplateError)
    title, description = data.get("title"), data.get("description", "")
    script = data.get("script", "job.sh")
    if not isinstance(title, str) or not title.strip():
        raise TemplateError(f"{path}: key 'title': expected a text, got {title!r}")
    if not isinstance(description, str):
        raise TemplateError(f"{path}: key 'description': expected a text")
    if not isinstance(script, str) or not SCRIPT_NAME_RE.fullmatch(script):
        raise TemplateError(f"{path}: key 'script': expected a file name, got {script!r}")
    if not (directory / script).is_file() or (directory / script).is_symlink():
        raise TemplateError(f"{directory / script}: the template's script is missing")
    return JobTemplate(directory.name, title.strip(), description.strip(), script, str(directory))


def load_templates(dirs: list[str]) -> tuple[dict[str, JobTemplate], list[str]]:
    """Templates of every directory of ``dirs``, a later one's replacing an earlier one's of
    the same name (a broken replacement removes it); and the errors, to log."""
    templates: dict[str, JobTemplate] = {}
    errors: list[str] = []
    for base in dirs:
        try:
            entries = sorted(Path(base).iterdir())
        except FileNotFoundError:
            continue
        except OSError as e:
            errors.append(f"{base}: cannot list: {e.strerror or e}")
            continue
        for entry in entries:
            if not TEMPLATE_NAME_RE.fullmatch(entry.name) or not entry.is_dir():
                continue
            templates.pop(entry.name, None)
            try:
                templates[entry.name] = read_template(entry)
            except TemplateError as e:
                errors.append(str(e))
    return templates, errors


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_settings(values: dict[str, Any]) -> dict[str, str]:
    """The composer's settings of a job, validated: cluster, partition, account, time limit,
    title and script (the file name in the folder). Only the keys given are returned."""
    checks = {
        "cluster": (re.compile(r"[a-z][a-z0-9_-]{0,31}"), "Cluster must be a cluster id"),
        "partition": (PARTITION_RE, "Partition must be a partition name"),
        "account": (ACCOUNT_RE, "Account must be letters, digits, '_', '.' or '-'"),
        "time_limit": (
            TIME_LIMIT_RE,
            "Time limit must be minutes (90), HH:MM:SS (01:30:00) or D-HH:MM:SS (2-00:00:00)",
        ),
        "script": (SCRIPT_NAME_RE, "Script must be a file name in the job's folder"),
        "title": (re.compile(r"[^\x00-\x1f\x7f]{1,100}"), "Title must be one line of 1-100"),
    }
    unknown = sorted(set(values) - set(checks))
    if unknown:
        raise ComposerError(f"unknown setting {unknown[0]!r}", field=unknown[0])
    settings = {}
    for key, value in values.items():
        pattern, message = checks[key]
        if not isinstance(value, str):
            raise ComposerError(message, field=key)
        value = value.strip()
        if value and not pattern.fullmatch(value) or (not value and key in ("script", "title")):
            raise ComposerError(message, field=key)
        settings[key] = value
    return settings


class JobFolders:
    """The numbered job folders under ``root``."""

    def __init__(self, root: str, max_bytes: int):
        self.root = root
        self.max_bytes = max_bytes

    def path(self, number: str) -> str:
        return os.path.join(self.root, number)

    def numbers(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted((n for n in names if re.fullmatch(JOB_NUMBER_RE, n)), key=int)

    def read(self, number: str) -> dict[str, Any]:
        """The job's settings and submissions; 404 when the folder is not a composer job."""
        if not re.fullmatch(JOB_NUMBER_RE, number):
            raise ComposerError(f"No job {number!r}", 404)
        meta = os.path.join(self.path(number), META_FILE)
        try:
            fd = os.open(meta, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise ComposerError(f"No job {number} in {self.root}", 404) from None
        except OSError as e:
            raise ComposerError(f"Cannot read job {number}: {e.strerror or e}", 500) from e
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ComposerError(f"Job {number}: {META_FILE} is not a file", 500)
            data = f.read(MAX_META_BYTES + 1)
        try:
            job = json.loads(data) if len(data) <= MAX_META_BYTES else None
        except ValueError:
            job = None
        if not isinstance(job, dict):
            raise ComposerError(f"Job {number}: {META_FILE} is damaged", 500)
        job["number"] = number
        job.setdefault("submissions", [])
        return job

    def write(self, number: str, job: dict[str, Any]) -> None:
        """Save the job's settings atomically (a temporary file renamed over the old one)."""
        self._write_meta(self.path(number), job)

    @staticmethod
    def _write_meta(folder: str, job: dict[str, Any]) -> None:
        data = {k: v for k, v in job.items() if k != "number"}
        fd, tmp = tempfile.mkstemp(prefix=".ondemand-job.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, os.path.join(folder, META_FILE))
        except BaseException:
            os.unlink(tmp)
            raise

    def files_of(self, directory: str, skip: re.Pattern | None = None) -> list[tuple[str, str]]:
        """``(name, path)`` of the regular files directly in ``directory`` (no symlinks, no
        hidden files, none matching ``skip``), at most MAX_FILES and ``max_bytes`` in all."""
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except FileNotFoundError:
            raise ComposerError(f"No directory {directory}", 404, "path") from None
        except NotADirectoryError:
            raise ComposerError(f"{directory} is not a directory", 400, "path") from None
        except OSError as e:
            raise ComposerError(f"Cannot read {directory}: {e.strerror or e}", 400, "path") from e
        files, total = [], 0
        for entry in entries:
            if entry.name.startswith(".") or (skip and skip.fullmatch(entry.name)):
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            total += entry.stat(follow_symlinks=False).st_size
            files.append((entry.name, entry.path))
            if len(files) > MAX_FILES or total > self.max_bytes:
                raise ComposerError(
                    f"{directory} holds more than {MAX_FILES} files or "
                    f"{self.max_bytes // 2**20} MiB: copy only the scripts and inputs of a job",
                    400,
                    "path",
                )
        return files

    def create(self, files: list[tuple[str, str]], job: dict[str, Any]) -> str:
        """A new job folder with copies of ``files`` and ``job``'s settings: its number."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        building = tempfile.mkdtemp(prefix=".new-", dir=self.root)
        try:
            os.chmod(building, 0o755)
            for name, source in files:
                _copy_file(source, os.path.join(building, name))
            self._write_meta(building, {**job, "created": _now(), "submissions": []})
            numbers = self.numbers()
            number = int(numbers[-1]) + 1 if numbers else 1
            for _ in range(100):
                try:
                    os.rename(building, self.path(str(number)))
                    return str(number)
                except OSError:  # taken meanwhile (another tab): the next one
                    number += 1
            raise ComposerError("Could not find a free job number", 500)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise

    def delete(self, number: str) -> None:
        self.read(number)  # only a composer job's folder
        shutil.rmtree(self.path(number))  # never follows symlinks out of the folder


def _copy_file(source: str, target: str) -> None:
    """Copy a regular file without following a symlink (it could have been swapped in since
    it was listed), keeping its permission bits (an executable stays executable)."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise ComposerError(f"Cannot copy {source}: {e.strerror or e}", 400) from e
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ComposerError(f"Cannot copy {source}: not a regular file", 400)
        with open(target, "xb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(target, stat.S_IMODE(st.st_mode) & 0o755 | 0o600)
