"""ondemand-stage settings: built-in defaults, overridden by the root-owned stage.yml.

The file is read from a fixed path (``STAGE_CONFIG_PATH``), never from the caller's environment
or arguments: a caller that could point the helper at another file could make root run anything.
The file must be owned by root and not writable by group or others. Unknown keys are an error.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import sys
from dataclasses import dataclass, field

from . import miniyaml
from .errors import ConfigError

STAGE_CONFIG_PATH = "/etc/ondemand-hub/stage.yml"


def _venv_bin(name: str) -> str:
    """Path of a console script installed beside the interpreter that runs ondemand-stage."""
    return os.path.join(os.path.dirname(os.path.abspath(sys.executable)), name)


@dataclass(frozen=True)
class StageConfig:
    """Every setting of ondemand-stage. Field names are the keys of stage.yml."""

    #: Accounts with a smaller uid never get a PUN (system accounts, root).
    min_uid: int = 1000
    #: Anchored pattern a user name must match before anything else is looked at.
    user_regex: str = r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$"
    #: Login shells that mark an account as disabled.
    disabled_shells: list = field(
        default_factory=lambda: [
            "/usr/sbin/nologin",
            "/sbin/nologin",
            "/bin/false",
            "/usr/bin/false",
        ]
    )
    #: JupyterHub's base_url; the PUN serves /<base_url>user/<name>/.
    base_url: str = "/"
    #: Seconds without a request after which `pun clean` stops a PUN that has no open connection.
    pun_idle_timeout: int = 7200
    #: Seconds `pun start` waits for nginx to listen, and `pun stop` for processes to exit.
    start_timeout: int = 20
    stop_timeout: int = 10
    nginx_bin: str = "/usr/sbin/nginx"
    mime_types: str = "/etc/nginx/mime.types"
    #: The per-user jupyter-server launcher (argv list); the socket option is appended.
    pun_server_cmd: list = field(default_factory=lambda: [_venv_bin("ondemand-pun-server")])
    #: PATH given to the user's processes.
    pun_path: str = field(
        default_factory=lambda: (
            os.path.dirname(os.path.abspath(sys.executable)) + ":/usr/local/bin:/usr/bin:/bin"
        )
    )
    #: Site configuration of every PUN's jupyter-server (JUPYTER_CONFIG_PATH), e.g. the
    #: dashboard's site_title in jupyter_server_config.py there.
    pun_config_dir: str = "/etc/ondemand-hub/jupyter"
    #: Front-end libraries from npm, served by each PUN's nginx at <prefix>static/vendor/<pkg>/.
    vendor_dir: str = "/opt/ondemand-hub/share/node_modules"
    vendor_packages: list = field(
        default_factory=lambda: [
            "bootstrap",
            "bootstrap-icons",
            "ace-builds",
            "@xterm/xterm",
            "@xterm/addon-fit",
            "chart.js",
        ]
    )
    #: Python packages whose ``static/`` directory nginx serves at <prefix>static/<package>/.
    static_packages: list = field(default_factory=lambda: ["ondemand_dashboard", "ondemand_files"])
    #: Largest upload (a Files PUT or one resumable chunk) nginx accepts from the PUN's owner,
    #: in nginx size syntax (``10g``, ``512m``); never unlimited. Larger: 413.
    client_max_body_size: str = "10g"
    #: Largest body of any other request (forms, JSON API calls, the editor's save), which
    #: jupyter-server holds in memory: small and finite. Larger: 413.
    max_request_body_size: str = "16m"
    #: Group of the front proxy's account (configurable-http-proxy). Each PUN's run directory
    #: (nginx's Unix socket) is owned by the user and this group, mode 0710: only the user and
    #: the proxy can reach the PUN. ``root`` when the proxy runs as root (the embedded default).
    proxy_group: str = "root"
    #: Root-owned directories: rendered nginx configs and PUN state.
    config_root: str = "/var/lib/ondemand-hub/stage/config"
    state_root: str = "/var/lib/ondemand-hub/stage/state"
    #: Root-owned trees (made at install, checked at every start: root's, not writable by
    #: others, no symlink at any level). Per user inside them: the run directory (nginx's and
    #: jupyter-server's sockets, pid file; the user's, group proxy_group, 0710), logs (a
    #: root-owned directory of files owned by the user), nginx temp files (the user's, 0700).
    run_root: str = "/run/ondemand-hub"
    log_root: str = "/var/log/ondemand-hub"
    tmp_root: str = "/var/tmp/ondemand-hub"
    #: Root-owned audit log: one JSON line per start, stop and clean (who asked, for whom, result).
    audit_log: str = "/var/log/ondemand-hub/stage.log"
    #: `user run`: the only commands the hub may run as a portal user, each an argv prefix
    #: written as words (docs/sessions.md). A cluster with its own Slurm bin_dir adds its
    #: sbatch and scancel here.
    user_programs: list = field(
        default_factory=lambda: [
            "/usr/bin/sbatch",
            "/usr/bin/scancel",
            "/usr/bin/install -d -m 0700 --",
            "/usr/bin/cat --",
            "/usr/bin/tail -n",
            f"{os.path.abspath(sys.executable)} -I -m ondemand_hub.scheduler.local",
        ]
    )
    #: `user run`: names of variables the hub may pass (a trailing * matches any ending).
    user_env: list = field(default_factory=lambda: ["JUPYTERHUB_*", "SLURM_CONF"])
    #: `user run`: the most seconds a command may take (the hub asks for less).
    user_run_timeout: int = 300
    #: `user run` becomes the user through runuser: a PAM session, so limits.conf applies.
    runuser_bin: str = "/usr/sbin/runuser"


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(StageConfig)}
_PYTHON_TYPES = {"int": int, "str": str, "list": list}


def _check_value(key: str, value: object, path: str) -> object:
    expected = _PYTHON_TYPES[_FIELD_TYPES[key]]
    if isinstance(value, bool) or not isinstance(value, expected):
        raise ConfigError(
            f"{path}: key {key!r}: expected {expected.__name__}, got {type(value).__name__}"
        )
    if expected is list and not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{path}: key {key!r}: expected a list of non-empty strings")
    if expected is int and value < 0:
        raise ConfigError(f"{path}: key {key!r}: expected a number >= 0, got {value}")
    return value


def config_from_mapping(data: dict, path: str = STAGE_CONFIG_PATH) -> StageConfig:
    """Validate a parsed stage.yml mapping and merge it over the defaults."""
    unknown = sorted(set(data) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(_FIELD_TYPES))}"
        )
    values = {key: _check_value(key, value, path) for key, value in data.items()}
    config = StageConfig(**values)
    if not config.base_url.startswith("/") or not config.base_url.endswith("/"):
        raise ConfigError(f"{path}: key 'base_url': expected a path that starts and ends with '/'")
    return config


def _check_ownership(path: str, st: os.stat_result) -> None:
    if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"{path}: must be owned by root and writable only by root")


def load_config(path: str = STAGE_CONFIG_PATH) -> StageConfig:
    """Read stage.yml; defaults when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return StageConfig()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        if os.geteuid() == 0:
            _check_ownership(path, os.fstat(f.fileno()))
        raw = f.read()
    try:
        data = miniyaml.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text") from e
    except miniyaml.MiniYAMLError as e:
        raise ConfigError(f"{path}: {e}") from e
    return config_from_mapping(data, path)
