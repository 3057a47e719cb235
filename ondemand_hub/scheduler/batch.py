"""Pure builders of an interactive session's Slurm job: the batch script and the sbatch argv.

Both take the values :func:`ondemand_hub.site.apps.validate_options` returned, never raw user
input, and a :class:`SessionContext` the spawner supplies. The script goes to sbatch on stdin;
every resource request is on the argv, so a template cannot add or override ``#SBATCH`` lines
with user values.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .slurm import SlurmCommands

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_PATH = re.compile(r"/[A-Za-z0-9._/+@-]*")


class BatchScriptError(ValueError):
    """A batch script cannot be rendered safely; the message says which value is at fault."""


@dataclass(frozen=True)
class SessionContext:
    """What the spawner knows about a session before it submits it.

    ``session_dir`` is also Slurm's ``--chdir`` and the place of ``output.log``, so it may not
    hold ``%`` (Slurm's filename patterns) or whitespace. ``jupyter_cmd`` is an argv (trusted,
    from the spawner's configuration) the script ``exec``s."""

    app_id: str
    session_id: str
    session_dir: str
    hub_api_url: str
    hub_prefix: str
    jupyter_cmd: tuple[str, ...] = ("jupyterhub-singleuser",)

    def __post_init__(self) -> None:
        for name in ("app_id", "session_id"):
            if not SESSION_ID.fullmatch(getattr(self, name)):
                raise BatchScriptError(f"{name} {getattr(self, name)!r} is not a valid id")
        if not _PATH.fullmatch(self.session_dir) or "/../" in self.session_dir + "/":
            raise BatchScriptError(f"session_dir {self.session_dir!r} is not a safe absolute path")
        for value in (self.hub_api_url, self.hub_prefix, *self.jupyter_cmd):
            _one_line(value)
        if not self.jupyter_cmd:
            raise BatchScriptError("jupyter_cmd is empty")


def _one_line(value: Any) -> Any:
    """Jinja's ``finalize``: every ``{{ }}`` output passes here, after its filters."""
    if value is None:
        raise BatchScriptError("a template printed an empty (None) value")
    if isinstance(value, str) and ("\n" in value or "\r" in value or "\0" in value):
        raise BatchScriptError(f"refusing to print a value with a newline or NUL: {value!r}")
    return value


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        finalize=_one_line,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["shquote"] = lambda v: shlex.quote(str(v))
    env.filters["shjoin"] = lambda vs: shlex.join(str(v) for v in vs)
    return env


def make_batch_script(app: Any, values: Mapping[str, Any], context: SessionContext) -> str:
    """The batch script of ``app`` (an :class:`ondemand_hub.site.apps.App`) for validated
    ``values``: the template sees each field by name and each ``SessionContext`` attribute."""
    variables = {**values, **asdict(context)}
    try:
        return _environment().from_string(app.script).render(variables)
    except jinja2.TemplateError as e:
        raise BatchScriptError(f"{app.id}: script.sh.j2: {e}") from e


def _flag(name: str, value: Any) -> str:
    text = str(value)
    if isinstance(value, bool) or not text or text.startswith("-") or re.search(r"\s|\0", text):
        raise BatchScriptError(f"refusing {name}={value!r} on the sbatch command line")
    return f"--{name}={text}"


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BatchScriptError(f"refusing {name}={value!r}: expected a validated whole number")
    return value


def make_sbatch_argv(
    commands: SlurmCommands, values: Mapping[str, Any], context: SessionContext
) -> list[str]:
    """``sbatch`` argv for a session (the script goes on stdin). Only fields the app declares
    become options; ``bc_queue`` None (no partitions) leaves the partition to Slurm."""
    args = ["--parsable", f"--job-name=ondemand-{context.app_id}-{context.session_id}"]
    if values.get("bc_queue") is not None:
        args.append(_flag("partition", values["bc_queue"]))
    if "bc_num_hours" in values:
        args.append(_flag("time", f"{_whole('time', values['bc_num_hours']):02d}:00:00"))
    if "bc_num_nodes" in values:
        args.append(_flag("nodes", _whole("nodes", values["bc_num_nodes"])))
    if "bc_num_slots" in values:
        args.append(_flag("cpus-per-task", _whole("cpus-per-task", values["bc_num_slots"])))
    if "bc_memory_gb" in values:
        args.append(_flag("mem", f"{_whole('mem', values['bc_memory_gb'])}G"))
    if values.get("bc_num_gpus"):
        args.append(_flag("gres", f"gpu:{_whole('gres', values['bc_num_gpus'])}"))
    if values.get("bc_account"):
        args.append(_flag("account", values["bc_account"]))
    args += [
        f"--chdir={context.session_dir}",
        f"--output={context.session_dir}/output.log",
        "--export=NONE",
    ]
    return commands.argv("sbatch", *args)
