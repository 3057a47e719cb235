"""``ondemand-stage user run``: one command as a portal user, for the hub's interactive sessions.

Everything the hub does as a user besides the PUN goes through here: ``sbatch`` and ``scancel``,
the session folder (``install -d``), reading the port file and the log (``cat``, ``tail``), the
local cluster's start/stop helper. So one sudo rule covers it all, and every such action gets
the same account checks as a PUN (:func:`~ondemand_hub.stage.user.validate_user`: not a system
account, not disabled, not locked or expired) and a line in the audit log. The hub account can
act as any portal user (that is its job: it submits their jobs), never as root, ``munge``,
``slurm`` or any other account the portal does not serve.

What may run is decided by stage.yml, never by the caller:

* ``argv[0]`` is an absolute path and ``argv`` starts with one of ``user_programs`` (each an
  argv prefix written as words: ``/usr/bin/install -d -m 0700 --`` allows nothing but making a
  private folder). What follows the prefix is not checked: it runs as the user, who could run it
  themselves.
* The environment is built here (HOME, USER, LOGNAME, SHELL, PATH, LANG) plus only the names
  ``user_env`` allows (``JUPYTERHUB_*``, ``SLURM_CONF``), passed on stdin as JSON with the
  command's own input: tokens never appear on a command line, and sudo's ``env_reset`` needs no
  ``env_keep`` exception.
* The command runs through ``runuser -u <user> --`` (a PAM session: ``limits.conf`` applies to
  jobs and local sessions as it does to a login, and the session is logged) in a clean
  environment, in a process group of its own that is killed when ``timeout`` runs out; its
  output is bounded, so a port file that is a link to ``/dev/zero`` cannot fill root's memory.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence

from . import process
from .config import StageConfig
from .errors import StageError, UsageError
from .user import PunUser

MAX_ARGS = 128
MAX_ARG_LENGTH = 4096
MAX_ENV = 64
MAX_VALUE_LENGTH = 4096
#: The whole JSON request on stdin, and the command's input inside it.
MAX_REQUEST = 2 << 20
MAX_INPUT = 1 << 20
#: stdout and stderr each: a port file, 20 lines of a log, a job id.
MAX_OUTPUT = 1 << 20
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UserCommandError(StageError):
    """The command cannot be run as the user, or did not end in time."""


def allowed_prefixes(config: StageConfig) -> list[list[str]]:
    return [spec.split() for spec in config.user_programs]


def check_argv(argv: Sequence[str], config: StageConfig) -> list[str]:
    """The argv if stage.yml allows it (see the module docstring); UsageError saying why not."""
    argv = list(argv)
    if not argv:
        raise UsageError("no program given")
    if len(argv) > MAX_ARGS:
        raise UsageError(f"more than {MAX_ARGS} arguments")
    for arg in argv:
        if len(arg) > MAX_ARG_LENGTH:
            raise UsageError(f"an argument is longer than {MAX_ARG_LENGTH} characters")
        if _CONTROL.search(arg):
            raise UsageError(f"control character in argument {arg[:40]!r}")
    if not os.path.isabs(argv[0]):
        raise UsageError(f"the program must be an absolute path, not {argv[0]!r}")
    prefixes = allowed_prefixes(config)
    if not any(argv[: len(p)] == p for p in prefixes):
        known = [p for p in prefixes if p[0] == argv[0]]
        if known:
            raise UsageError(
                f"{argv[0]} is allowed only as: " + " | ".join(" ".join(p) for p in known)
            )
        raise UsageError(f"program not allowed: {argv[0]} (stage.yml user_programs)")
    return argv


def env_allowed(name: str, config: StageConfig) -> bool:
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in config.user_env)


def check_env(env: object, config: StageConfig) -> dict[str, str]:
    """The passed variables if every name is allowed and every value one short line."""
    if not isinstance(env, Mapping):
        raise UsageError('"env" must be an object of strings')
    if len(env) > MAX_ENV:
        raise UsageError(f"more than {MAX_ENV} variables")
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise UsageError(f"not a variable name: {str(name)[:40]!r}")
        if not env_allowed(name, config):
            raise UsageError(f"variable not allowed: {name} (stage.yml user_env)")
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            raise UsageError(f"the value of {name} must be a string of at most 4096 characters")
        if _CONTROL.search(value):
            raise UsageError(f"control character in the value of {name}")
    return dict(env)


def parse_request(text: str, config: StageConfig) -> tuple[dict[str, str], str]:
    """``{"env": {...}, "input": "..."}`` from stdin (both optional): the checked variables and
    the command's input."""
    if len(text) > MAX_REQUEST:
        raise UsageError(f"the request on stdin is longer than {MAX_REQUEST} bytes")
    if not text.strip():
        return {}, ""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise UsageError('stdin must be a JSON object like {"env": {...}, "input": "..."}') from e
    if not isinstance(data, dict) or set(data) - {"env", "input"}:
        raise UsageError('stdin must be a JSON object with only "env" and "input"')
    stdin = data.get("input", "")
    if not isinstance(stdin, str) or len(stdin) > MAX_INPUT:
        raise UsageError(f'"input" must be a string of at most {MAX_INPUT} characters')
    return check_env(data.get("env", {}), config), stdin


def check_timeout(timeout: int, config: StageConfig) -> int:
    if not 1 <= timeout <= config.user_run_timeout:
        raise UsageError(f"--timeout must be 1 to {config.user_run_timeout} seconds")
    return timeout


def make_runuser_argv(user: PunUser, argv: Sequence[str], config: StageConfig) -> list[str]:
    return [config.runuser_bin, "-u", user.name, "--", *argv]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _collect(proc: subprocess.Popen, timeout: float) -> tuple[bytes, bytes]:
    """Read stdout and stderr to their end, at most MAX_OUTPUT each, within ``timeout``."""
    deadline = time.monotonic() + timeout
    buffers = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    with selectors.DefaultSelector() as selector:
        for stream in buffers:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                _kill_group(proc)
                raise UserCommandError(f"{proc.args[4]} did not end within {timeout} s")
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffers[key.fileobj] += chunk
                if len(buffers[key.fileobj]) > MAX_OUTPUT:
                    _kill_group(proc)
                    raise UserCommandError(f"{proc.args[4]} wrote more than {MAX_OUTPUT} bytes")
    try:
        proc.wait(max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise UserCommandError(f"{proc.args[4]} did not end within {timeout} s") from None
    return bytes(buffers[proc.stdout]), bytes(buffers[proc.stderr])


def run(
    user: PunUser,
    argv: list[str],
    env: dict[str, str],
    stdin: str,
    timeout: int,
    config: StageConfig,
) -> dict:
    """Run the (checked) ``argv`` as ``user``; its exit code and output."""
    full_env = process.clean_env(user, config.pun_path, env)
    with tempfile.TemporaryFile() as input_file:  # a file: no deadlock on a full pipe
        input_file.write(stdin.encode())
        input_file.seek(0)
        try:
            proc = subprocess.Popen(
                make_runuser_argv(user, argv, config),
                stdin=input_file,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                cwd=user.home if os.path.isdir(user.home) else "/",
                start_new_session=True,
                close_fds=True,
            )
        except OSError as e:
            raise UserCommandError(f"cannot run {config.runuser_bin}: {e.strerror}") from e
        with proc:
            out, err = _collect(proc, timeout)
    return {
        "returncode": proc.returncode,
        "stdout": out.decode(errors="replace"),
        "stderr": err.decode(errors="replace"),
    }
