"""Pure builders: the paths of a user's PUN and its rendered nginx configuration."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import jinja2

from .config import StageConfig
from .errors import PunError

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

# Every value that reaches the nginx config must be made of these characters: no whitespace,
# quotes, braces or semicolons, so no value can end a directive and start another.
_NGINX_SAFE = re.compile(r"[A-Za-z0-9_./:@+~-]+")
# A finite, non-zero nginx size: 0 would mean "no limit".
_NGINX_SIZE = re.compile(r"[1-9][0-9]{0,9}[kKmMgG]?")


@dataclass(frozen=True)
class PunPaths:
    """Where one user's PUN keeps its files."""

    config_file: str  # rendered nginx config (root-owned directory)
    state_file: str  # pids, port, groups (root-owned, 0600)
    run_dir: str  # sockets and nginx pid (the user's, group proxy_group, 0710)
    nginx_socket: str  # nginx's Unix socket: the proxy's target (nginx makes it 0666)
    app_socket: str  # jupyter-server's Unix socket (0600: the user's only)
    log_dir: str  # root-owned directory of log files owned by the user
    tmp_dir: str  # nginx temp files (owned by the user, 0700)


def make_pun_paths(user: str, config: StageConfig) -> PunPaths:
    """The fixed locations of ``user``'s PUN; ``user`` must already be validated."""
    run_dir = os.path.join(config.run_root, user)
    return PunPaths(
        config_file=os.path.join(config.config_root, f"{user}.conf"),
        state_file=os.path.join(config.state_root, f"{user}.json"),
        run_dir=run_dir,
        nginx_socket=os.path.join(run_dir, "nginx.sock"),
        app_socket=os.path.join(run_dir, "jupyter.sock"),
        log_dir=os.path.join(config.log_root, user),
        tmp_dir=os.path.join(config.tmp_root, user),
    )


def make_pun_prefix(user: str, config: StageConfig) -> str:
    """The URL prefix JupyterHub routes to the user's default server."""
    return f"{config.base_url}user/{user}/"


def _safe(name: str, value: object) -> str:
    text = str(value)
    if not _NGINX_SAFE.fullmatch(text):
        raise PunError(f"refusing to write {name} {text!r} into an nginx config")
    return text


def _size(name: str, value: str) -> str:
    if not _NGINX_SIZE.fullmatch(value):
        raise PunError(f"{name} must be a finite nginx size such as 512m or 10g, got {value!r}")
    return value


def render_pun_config(
    *,
    user: str,
    uid: int,
    prefix: str,
    paths: PunPaths,
    config: StageConfig,
    static_dirs: dict[str, str],
) -> str:
    """Render the nginx config of one PUN. ``static_dirs`` maps a URL path (under the prefix)
    to the directory nginx serves there itself, without asking jupyter-server."""
    static_locations = [
        (_safe("location", prefix + url.strip("/") + "/"), _safe("directory", directory))
        for url, directory in sorted(static_dirs.items())
    ]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("pun.conf.j2").render(
        user=_safe("user", user),
        uid=int(uid),
        nginx_socket=_safe("nginx_socket", paths.nginx_socket),
        prefix=_safe("prefix", prefix),
        run_dir=_safe("run_dir", paths.run_dir),
        app_socket=_safe("app_socket", paths.app_socket),
        log_dir=_safe("log_dir", paths.log_dir),
        tmp_dir=_safe("tmp_dir", paths.tmp_dir),
        mime_types=_safe("mime_types", config.mime_types),
        client_max_body_size=_size("client_max_body_size", config.client_max_body_size),
        max_request_body_size=_size("max_request_body_size", config.max_request_body_size),
        static_locations=static_locations,
    )
