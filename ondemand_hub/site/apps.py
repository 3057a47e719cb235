"""Interactive apps: app directories (bundled ``apps/``, site ``/etc/ondemand-hub/apps/``) parsed
into validated objects, and the server-side validation of a launch form against them.

An app is a directory named after its id holding ``manifest.yml`` (title, description, icon,
category), ``form.yml`` (``form:`` the ordered field names, ``attributes:`` per field) and
``script.sh.j2`` (rendered by :func:`ondemand_hub.scheduler.batch.make_batch_script`).

Open OnDemand's well-known field names have built-in meaning (see ``SMART_FIELDS``); their
attributes in ``form.yml`` may change the label, help, default and limits, not the widget.
``validate_options`` is the only way from user input to a batch script or an sbatch argv: it
returns a typed value for every field or raises :class:`FormError`. The ``app`` and ``cluster``
keys of a launch request are the caller's business and must be removed before calling it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..scheduler.slurm import Partition
from .dropin import SiteFileError, check_keys, parse_yaml, read_site_text

APP_ID = re.compile(r"[a-z][a-z0-9_-]{0,31}")
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
ICON = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
WIDGETS = ("number_field", "select", "text_field", "check_box", "hidden_field")
MANIFEST_KEYS = ("title", "description", "icon", "category")
FORM_KEYS = ("form", "attributes")
ATTRIBUTE_KEYS = (
    "widget",
    "label",
    "help",
    "value",
    "min",
    "max",
    "step",
    "options",
    "pattern",
    "required",
)
#: Names the launch request or the batch script template already use; no field may take them.
RESERVED_NAMES = frozenset(
    {
        "app",
        "cluster",
        "session_id",
        "session_dir",
        "hub_api_url",
        "hub_prefix",
        "jupyter_cmd",
        "app_id",
    }
)
MAX_TEXT = 256
_INT_TEXT = re.compile(r"-?[0-9]{1,9}")
_CHECK_BOX = {True: True, False: False, "1": True, "0": False, "true": True, "false": False}


class AppError(SiteFileError):
    """An app's file is invalid: the message names the file, the key and what was expected."""


class FormError(ValueError):
    """A launch form value is refused; ``message`` is shown to the person who sent it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Field:
    """One form field, with its defaults filled in."""

    name: str
    widget: str
    label: str
    help: str = ""
    value: Any = None
    min: int | None = None
    max: int | None = None
    step: int = 1
    options: tuple[tuple[str, str | int], ...] = ()
    pattern: str | None = None
    required: bool = False


@dataclass(frozen=True)
class App:
    """One interactive app."""

    id: str
    title: str
    description: str
    icon: str
    category: str
    fields: tuple[Field, ...]
    script: str = field(repr=False)
    path: Path | None = None

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


#: OOD's well-known fields. ``bc_num_slots`` is the number of cores per node (``--cpus-per-task``;
#: OOD: nodes); ``bc_num_nodes`` the number of nodes (``--nodes``, at most the partition has);
#: ``bc_queue`` offers the cluster's live partitions.
SMART_FIELDS = {
    f.name: f
    for f in (
        Field("bc_queue", "select", "Partition", "Where the job runs."),
        Field(
            "bc_account",
            "text_field",
            "Account",
            "The Slurm account charged; empty for your default account.",
            value="",
            pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
        ),
        Field("bc_num_hours", "number_field", "Hours", "Maximum run time.", 1, 1, 48),
        Field("bc_num_slots", "number_field", "Cores", "CPU cores for the app.", 1, 1, 64),
        Field(
            "bc_num_nodes",
            "number_field",
            "Nodes",
            "Hosts for the job; the app is told their names (ONDEMAND_NODES).",
            1,
            1,
            64,
        ),
        Field("bc_memory_gb", "number_field", "Memory (GB)", "Memory for the app.", 4, 1, 1024),
        Field("bc_num_gpus", "number_field", "GPUs", "GPUs for the app.", 0, 0, 8),
    )
}


# --- parsing ------------------------------------------------------------------------------


def _text(path: Path, key: str, value: Any, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value.strip() or _unsafe(value, newline_ok=True):
        raise AppError(f"{path}: key {key!r}: expected a non-empty string, got {value!r}")
    return value


def _unsafe(value: str, newline_ok: bool = False) -> bool:
    return "\0" in value or (not newline_ok and ("\n" in value or "\r" in value))


def _int(path: Path, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AppError(f"{path}: key {key!r}: expected a whole number, got {value!r}")
    return value


def parse_manifest(path: Path, text: str) -> dict[str, str]:
    data = parse_yaml(path, text, AppError)
    if not isinstance(data, Mapping):
        raise AppError(f"{path}: expected a mapping with keys {', '.join(MANIFEST_KEYS)}")
    data = check_keys(path, data, MANIFEST_KEYS, error=AppError)
    icon = _text(path, "icon", data.get("icon"), "window")
    if not ICON.fullmatch(icon):
        raise AppError(f"{path}: key 'icon': expected a Bootstrap Icons name, got {icon!r}")
    return {
        "title": _text(path, "title", data.get("title")),
        "description": _text(path, "description", data.get("description"), ""),
        "icon": icon,
        "category": _text(path, "category", data.get("category"), "Interactive Apps"),
    }


def _option(path: Path, key: str, item: Any) -> tuple[str, str | int]:
    if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str):
        label, value = item
    else:
        label, value = str(item), item
    if isinstance(value, bool) or not isinstance(value, str | int) or _unsafe(str(value)):
        raise AppError(f"{path}: key {key!r}: expected a value or [label, value], got {item!r}")
    return label, value


def _check_default(path: Path, key: str, f: Field) -> None:
    try:
        if f.widget != "hidden_field" and not (f.name == "bc_queue" and f.value is None):
            _clean(f, f.value, [])
    except FormError as e:
        raise AppError(f"{path}: key {key + '.value'!r}: {e.message}") from None


def parse_field(path: Path, name: str, attrs: Any) -> Field:
    """One entry of ``attributes`` (``attrs`` is None for a smart field left as it is)."""
    key = f"attributes.{name}"
    if not FIELD_NAME.fullmatch(name) or name in RESERVED_NAMES:
        raise AppError(f"{path}: key {key!r}: not a valid field name")
    attrs = {} if attrs is None else attrs
    if not isinstance(attrs, Mapping):
        raise AppError(f"{path}: key {key!r}: expected a mapping of {', '.join(ATTRIBUTE_KEYS)}")
    attrs = check_keys(path, attrs, ATTRIBUTE_KEYS, prefix=f"{key}.", error=AppError)
    base = SMART_FIELDS.get(name)
    widget = attrs.get("widget", base.widget if base else None)
    if widget not in WIDGETS or (base and widget != base.widget):
        allowed = (base.widget,) if base else WIDGETS
        raise AppError(f"{path}: key '{key}.widget': expected {' or '.join(allowed)}")
    f = base or Field(name, widget, name.replace("_", " ").capitalize())
    changes: dict[str, Any] = {}
    for k in ("label", "help"):
        if k in attrs:
            changes[k] = _text(path, f"{key}.{k}", attrs[k])
    for k in ("min", "max", "step"):
        if k in attrs:
            changes[k] = _int(path, f"{key}.{k}", attrs[k])
    if "required" in attrs:
        if not isinstance(attrs["required"], bool):
            raise AppError(f"{path}: key '{key}.required': expected true or false")
        changes["required"] = attrs["required"]
    if "options" in attrs:
        if name == "bc_queue" or not isinstance(attrs["options"], list) or not attrs["options"]:
            raise AppError(f"{path}: key '{key}.options': expected a non-empty list")
        changes["options"] = tuple(_option(path, f"{key}.options", o) for o in attrs["options"])
    if "pattern" in attrs:
        pattern = _text(path, f"{key}.pattern", attrs["pattern"])
        try:
            re.compile(pattern)
        except re.error as e:
            raise AppError(f"{path}: key '{key}.pattern': invalid regular expression: {e}") from e
        changes["pattern"] = pattern
    if "value" in attrs:
        changes["value"] = attrs["value"]
    return _complete(path, key, replace(f, **changes))


def _complete(path: Path, key: str, f: Field) -> Field:
    """Defaults that depend on the widget, then the checks a field must pass as a whole."""
    if f.widget == "number_field":
        if f.min is None or f.max is None or f.min > f.max or f.step < 1:
            raise AppError(f"{path}: key {key!r}: a number_field needs min <= max and step >= 1")
        if f.value is None:
            f = replace(f, value=f.min)
    elif f.widget == "select" and f.name != "bc_queue":
        if not f.options:
            raise AppError(f"{path}: key '{key}.options': a select needs options")
        if f.value is None:
            f = replace(f, value=f.options[0][1])
    elif f.widget == "text_field":
        if f.pattern is None:
            raise AppError(f"{path}: key '{key}.pattern': a text_field needs a pattern")
        if f.value is None:
            f = replace(f, value="")
    elif f.widget == "check_box" and f.value is None:
        f = replace(f, value=False)
    elif f.widget == "hidden_field" and (
        isinstance(f.value, bool) or not isinstance(f.value, str | int) or _unsafe(str(f.value))
    ):
        raise AppError(f"{path}: key '{key}.value': a hidden_field needs a one-line value")
    _check_default(path, key, f)
    return f


def parse_form(path: Path, text: str) -> tuple[Field, ...]:
    data = parse_yaml(path, text, AppError)
    if not isinstance(data, Mapping) or not isinstance(data.get("form"), list):
        raise AppError(f"{path}: expected a mapping with key 'form', a list of field names")
    data = check_keys(path, data, FORM_KEYS, error=AppError)
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise AppError(f"{path}: key 'attributes': expected a mapping of field names")
    names = data["form"]
    for name in names:
        if not isinstance(name, str) or (name not in attributes and name not in SMART_FIELDS):
            raise AppError(f"{path}: key 'form': {name!r} has no entry under 'attributes'")
    if len(set(names)) != len(names):
        raise AppError(f"{path}: key 'form': a field is listed twice")
    extra = sorted(str(k) for k in attributes if k not in names)
    if extra:
        raise AppError(f"{path}: key 'attributes.{extra[0]}': not listed under 'form'")
    return tuple(parse_field(path, name, attributes.get(name)) for name in names)


def parse_app(directory: Path) -> App:
    """The app in ``directory``; :class:`AppError` names the file and key that are wrong."""
    app_id = directory.name
    if not APP_ID.fullmatch(app_id):
        raise AppError(
            f"{directory}: the directory name must be an app id: lowercase letters, digits, "
            "- and _, at most 32 characters"
        )
    texts = {}
    for name in ("manifest.yml", "form.yml", "script.sh.j2"):
        try:
            texts[name] = read_site_text(directory / name)
        except FileNotFoundError:
            raise AppError(f"{directory / name}: missing: every app needs this file") from None
    manifest = parse_manifest(directory / "manifest.yml", texts["manifest.yml"])
    fields = parse_form(directory / "form.yml", texts["form.yml"])
    return App(id=app_id, fields=fields, script=texts["script.sh.j2"], path=directory, **manifest)


def load_apps(dirs: Iterable[Path | str]) -> tuple[dict[str, App], list[str]]:
    """Every valid app of ``dirs`` by id (sorted), and one error string per bad app.

    A later directory's app replaces an earlier one with the same id; a broken replacement
    removes the app rather than falling back to the earlier one, whose limits the site meant
    to change."""
    apps: dict[str, App] = {}
    errors: list[str] = []
    for directory in map(Path, dirs):
        try:
            entries = sorted(
                e for e in directory.iterdir() if not e.name.startswith(".") and e.is_dir()
            )
        except FileNotFoundError:
            continue
        except OSError as e:
            errors.append(f"{directory}: cannot list apps: {e.strerror or e}")
            continue
        for entry in entries:
            try:
                apps[entry.name] = parse_app(entry)
            except SiteFileError as e:
                apps.pop(entry.name, None)
                errors.append(str(e))
    return dict(sorted(apps.items())), errors


# --- validation ---------------------------------------------------------------------------


def _number(f: Field, value: Any) -> int:
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        value = int(value)
    step = f" in steps of {f.step}" if f.step > 1 else ""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or not f.min <= value <= f.max or (value - f.min) % f.step:
        raise FormError(f.name, f"{f.label} must be a whole number from {f.min} to {f.max}{step}")
    return value


def _select(f: Field, value: Any, options: Sequence[tuple[str, str | int]]) -> str | int:
    for _label, option in options:
        if not isinstance(value, bool) and (value == option or value == str(option)):
            return option
    shown = ", ".join(str(o) for _l, o in options) or "none available"
    raise FormError(f.name, f"{f.label} must be one of: {shown}")


def _string(f: Field, value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or _unsafe(value):
        raise FormError(f.name, f"{f.label} must be one line of at most {MAX_TEXT} characters")
    if value == "":
        if f.required:
            raise FormError(f.name, f"{f.label} is required")
        return value
    if not re.fullmatch(f.pattern or "", value):
        raise FormError(f.name, f"{f.label} {value!r} is not allowed: it must match {f.pattern}")
    return value


def _clean(f: Field, value: Any, partitions: Sequence[Partition]) -> Any:
    if f.widget == "number_field":
        return _number(f, value)
    if f.widget == "text_field":
        return _string(f, value)
    if f.widget == "check_box":
        if not isinstance(value, bool | str) or value not in _CHECK_BOX:
            raise FormError(f.name, f"{f.label} must be checked or not (true or false)")
        return _CHECK_BOX[value]
    if f.widget == "hidden_field":
        if value != f.value and value != str(f.value):
            raise FormError(f.name, f"{f.label} cannot be changed")
        return f.value
    if f.name == "bc_queue":
        live = [(p.name, p.name) for p in partitions if p.available]
        return _select(f, value, live)
    return _select(f, value, f.options)


def _default(f: Field, partitions: Sequence[Partition]) -> Any:
    if f.name == "bc_queue" and f.value is None:
        up = [p for p in partitions if p.available]
        chosen = next((p for p in up if p.default), up[0] if up else None)
        return chosen.name if chosen else None
    return f.value


def validate_options(
    app: App, options: Mapping[str, Any], partitions: Sequence[Partition]
) -> dict[str, Any]:
    """A clean, typed value for every field of ``app`` (defaults for the omitted ones), or
    :class:`FormError` for the first field refused. ``options`` must not hold ``app`` or
    ``cluster``: the caller picks those. ``partitions`` are the cluster's live ones; an empty
    list (the local cluster) makes ``bc_queue`` None."""
    names = {f.name for f in app.fields}
    unknown = sorted(str(k) for k in options if k not in names)
    if unknown:
        raise FormError(unknown[0], f"unknown field {unknown[0]!r}")
    values: dict[str, Any] = {}
    for f in app.fields:
        if f.name in options:
            values[f.name] = _clean(f, options[f.name], partitions)
        else:
            values[f.name] = _default(f, partitions)
            if f.name == "bc_queue" and values[f.name] is not None:
                values[f.name] = _clean(f, values[f.name], partitions)
    _check_gpus(app, values, partitions)
    _check_nodes(values, partitions)
    return values


def _check_gpus(app: App, values: dict[str, Any], partitions: Sequence[Partition]) -> None:
    gpus, queue = values.get("bc_num_gpus") or 0, values.get("bc_queue")
    part = next((p for p in partitions if p.name == queue), None)
    if gpus and (part is None or "gpu" not in part.gres):
        where = f"partition {queue!r}" if part else "this cluster"
        raise FormError("bc_num_gpus", f"The {where} has no GPUs: set GPUs to 0")


def _check_nodes(values: dict[str, Any], partitions: Sequence[Partition]) -> None:
    """More than one node needs a partition that has that many (sinfo's node count)."""
    nodes, queue = values.get("bc_num_nodes") or 1, values.get("bc_queue")
    part = next((p for p in partitions if p.name == queue), None)
    if nodes > 1 and (part is None or nodes > part.nodes):
        if part is None:
            raise FormError(
                "bc_num_nodes", "Nodes must be 1: this cluster runs a session on one host"
            )
        raise FormError(
            "bc_num_nodes",
            f"Nodes must be at most {part.nodes}: the partition {queue!r} has {part.nodes} node(s)",
        )


def bundled_apps_dir() -> str:
    """The apps shipped with ondemand-hub: ``$ONDEMAND_HUB_BUNDLED_APPS``, else ``apps/`` of a
    source checkout, else ``<prefix>/share/ondemand-hub/apps`` (where setup.cfg installs them).
    The hub's session spawner and the PUN's sessions pages both look here."""
    if os.environ.get("ONDEMAND_HUB_BUNDLED_APPS"):
        return os.environ["ONDEMAND_HUB_BUNDLED_APPS"]
    checkout = Path(__file__).resolve().parents[2] / "apps"
    if checkout.is_dir():
        return str(checkout)
    return os.path.join(sys.prefix, "share", "ondemand-hub", "apps")


def default_app_dirs() -> list[str]:
    """Where the hub's spawner and the PUN's pages look for apps by default: the bundled ones,
    then the site's, which replace a bundled app of the same id."""
    return [bundled_apps_dir(), "/etc/ondemand-hub/apps"]
