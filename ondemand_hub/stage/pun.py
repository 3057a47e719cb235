"""The sub-commands of ``ondemand-stage pun``, each a named sequence of steps.

A PUN is two processes running as the user: nginx (serving static files itself and proxying
everything else) and jupyter-server with the portal's extensions. Neither listens on TCP: both
have a Unix socket in the user's run directory, which only the user and the front proxy's group
may enter (0710); jupyter-server's socket is the user's alone (0600). Their pids and start
times live in a root-owned state file, so a PUN survives a hub restart and is found again.
"""

from __future__ import annotations

import grp
import hashlib
import http.client
import importlib.util
import json
import os
import re
import socket
import stat
import time

from . import process
from .config import StageConfig
from .errors import PunError, UsageError
from .render import PunPaths, make_pun_paths, make_pun_prefix, render_pun_config
from .user import PunUser, check_name, validate_user

_ENV_KEY = re.compile(r"JUPYTERHUB_[A-Z0-9_]{1,64}")
_MAX_ENV_VALUE = 8192
STATUS_PATH = "/__pun_status"
LOG_FILES = ("nginx-error.log", "nginx-access.log", "jupyter.log")


def check_env(env: object) -> dict[str, str]:
    """Accept only JUPYTERHUB_* variables with printable single-line values from the caller."""
    if not isinstance(env, dict):
        raise UsageError("env must be a JSON object")
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
            raise UsageError(f"env: refusing variable {key!r}: only JUPYTERHUB_* is passed on")
        if not isinstance(value, str) or len(value) > _MAX_ENV_VALUE:
            raise UsageError(f"env: {key}: expected a string of at most {_MAX_ENV_VALUE} bytes")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise UsageError(f"env: {key}: control characters are not allowed")
    return dict(env)


def env_digest(env: dict[str, str]) -> str:
    """What identifies the hub's start request (its token, URLs) without keeping the token."""
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()


def static_dirs(config: StageConfig) -> dict[str, str]:
    """URL path (under the prefix) → directory, for everything nginx serves without Python."""
    dirs = {}
    for package in config.static_packages:
        # find_spec on a top-level name locates the package without executing its code
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise PunError(f"static package {package!r} is not installed")
        dirs[f"static/{package}"] = os.path.join(spec.submodule_search_locations[0], "static")
    for package in config.vendor_packages:
        dirs[f"static/vendor/{package}"] = os.path.join(config.vendor_dir, package)
    return dirs


def pun_state(user: PunUser, paths: PunPaths) -> dict | None:
    state = process.read_json(paths.state_file)
    if state and state.get("uid") != user.uid:
        raise PunError(f"{paths.state_file} belongs to uid {state.get('uid')}, not {user.uid}")
    return state


def is_running(state: dict | None) -> bool:
    if not state:
        return False
    return all(process.is_alive(state.get(k), state["uid"]) for k in ("nginx", "server"))


def proxy_gid(config: StageConfig) -> int:
    try:
        return grp.getgrnam(config.proxy_group).gr_gid
    except KeyError:
        raise PunError(f"proxy_group {config.proxy_group!r} does not exist") from None


def prepare_dirs(user: PunUser, paths: PunPaths, config: StageConfig) -> None:
    """Checked root-owned trees; the user's run directory (0710, group proxy_group: only the
    user and the proxy reach nginx's socket) and tmp directory (0700); a root-owned log
    directory."""
    for root in (config.config_root, config.run_root, config.log_root, config.tmp_root):
        process.ensure_root_dir(root, 0o755)
    process.ensure_root_dir(config.state_root, 0o700)
    process.ensure_dir(paths.run_dir, user.uid, proxy_gid(config), 0o710)
    process.ensure_dir(paths.tmp_dir, user.uid, user.gid, 0o700)
    process.ensure_dir(paths.log_dir, 0, 0, 0o755)
    remove_stale_socket(paths.run_dir, os.path.basename(paths.nginx_socket))


def remove_stale_socket(directory: str, name: str) -> None:
    """nginx cannot bind while a socket of a killed nginx is left; remove it (only a socket,
    by name in the directory just checked, never following a link)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if stat.S_ISSOCK(os.lstat(name, dir_fd=fd).st_mode):
            os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP to nginx's Unix socket (the PUN has no TCP port)."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _answers(sock: str, path: str) -> bool:
    """True once nginx answers ``path`` with a status below 500 (502: the app is not up yet)."""
    conn = UnixHTTPConnection(sock, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status < 500
    except OSError:
        return False
    finally:
        conn.close()


def busy_requests(sock: str) -> int:
    """Requests nginx is reading or writing right now (uploads, downloads, websockets), not
    counting idle keep-alive connections nor this status request itself."""
    conn = UnixHTTPConnection(sock, timeout=5)
    try:
        conn.request("GET", STATUS_PATH)
        text = conn.getresponse().read().decode("ascii", "replace")
    except OSError as e:
        raise PunError(f"cannot read the status of the PUN at {sock}: {e}") from e
    finally:
        conn.close()
    match = re.search(r"Reading: (\d+) Writing: (\d+)", text)
    if not match:
        raise PunError(f"unexpected nginx status at {sock}")
    return int(match.group(1)) + int(match.group(2)) - 1


def log_tail(paths: PunPaths, name: str) -> str:
    try:
        with open(os.path.join(paths.log_dir, name), "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def wait_ready(state: dict, paths: PunPaths, prefix: str, timeout: float) -> None:
    """Wait until the PUN answers through nginx, as the hub will ask it; fail fast if a
    process died, with the last line of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key, log in (("nginx", "nginx-error.log"), ("server", "jupyter.log")):
            if not process.is_alive(state[key], state["uid"]):
                raise PunError(f"{key} exited at start: {log_tail(paths, log)}")
        if _answers(state["socket"], prefix + "api"):
            return
        time.sleep(0.02)
    raise PunError(f"the PUN did not answer within {timeout} s")


def start_processes(
    user: PunUser, paths: PunPaths, config: StageConfig, env: dict[str, str]
) -> tuple[process.ProcessId, process.ProcessId]:
    """Start jupyter-server, then nginx, as the user; return both identities."""
    fds = {
        name: process.create_user_file(os.path.join(paths.log_dir, name), user)
        for name in LOG_FILES
    }
    try:
        nginx_argv = [
            config.nginx_bin,
            "-c",
            paths.config_file,
            "-e",
            os.path.join(paths.log_dir, "nginx-error.log"),
        ]
        process.run_as_user([*nginx_argv, "-t", "-q"], user, env, config.start_timeout)
        server_argv = [*config.pun_server_cmd, "--sock", paths.app_socket]
        server = process.identify(process.spawn_as_user(server_argv, user, env, fds["jupyter.log"]))
        nginx_pid = process.spawn_as_user(
            [*nginx_argv, "-g", "daemon off;"], user, env, fds["nginx-error.log"]
        )
        return server, process.identify(nginx_pid)
    finally:
        for fd in fds.values():
            os.close(fd)


def user_lock(name: str, config: StageConfig):
    process.ensure_root_dir(config.state_root, 0o700)
    return process.exclusive_lock(os.path.join(config.state_root, f".{name}.lock"))


def start(name: str, env: object, config: StageConfig) -> dict:
    """Start ``name``'s PUN (or report the one already running)."""
    user = validate_user(name, config)
    env = check_env(env)
    prefix = make_pun_prefix(user.name, config)
    if env.get("JUPYTERHUB_SERVICE_PREFIX", prefix) != prefix:
        raise UsageError(f"JUPYTERHUB_SERVICE_PREFIX must be {prefix}")
    with user_lock(user.name, config):
        paths = make_pun_paths(user.name, config)
        state = pun_state(user, paths)
        if is_running(state):
            # the same start again (same groups, same hub token): the running PUN; otherwise
            # (new token from a new spawn, a PUN of before sockets with a TCP port) a fresh one
            if (state["groups"], state.get("socket"), state.get("env_sha256")) == (
                list(user.groups),
                paths.nginx_socket,
                env_digest(env),
            ):
                return describe(user, paths, state)
            _stop_locked(user.name, config)
        state = _start_locked(user, env, prefix, config)
        return describe(user, paths, state)


def _start_locked(user: PunUser, env: dict[str, str], prefix: str, config: StageConfig) -> dict:
    """Render, check and start the PUN; return its state once it answers (stop it if not)."""
    paths = make_pun_paths(user.name, config)
    prepare_dirs(user, paths, config)
    conf = render_pun_config(
        user=user.name,
        uid=user.uid,
        prefix=prefix,
        paths=paths,
        config=config,
        static_dirs=static_dirs(config),
    )
    process.write_atomic(paths.config_file, conf, 0o644)
    server, nginx = start_processes(
        user,
        paths,
        config,
        process.clean_env(
            user,
            config.pun_path,
            {
                **env,
                "JUPYTER_CONFIG_PATH": config.pun_config_dir,
                "ONDEMAND_HUB_PUN_TMP": paths.tmp_dir,
            },
        ),
    )
    state = {
        "user": user.name,
        "uid": user.uid,
        "gid": user.gid,
        "groups": list(user.groups),
        "socket": paths.nginx_socket,
        "env_sha256": env_digest(env),
        "server": server.to_json(),
        "nginx": nginx.to_json(),
        "started_at": time.time(),
    }
    process.write_atomic(paths.state_file, _dumps(state), 0o600)
    try:
        wait_ready(state, paths, prefix, config.start_timeout)
    except PunError:
        _stop_locked(user.name, config)
        raise
    return state


def _dumps(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def last_activity(paths: PunPaths, state: dict) -> float:
    """Time of the last request nginx logged (or the start, if none since)."""
    try:
        logged = os.stat(os.path.join(paths.log_dir, "nginx-access.log")).st_mtime
    except OSError:
        logged = 0.0
    return max(logged, float(state.get("started_at", 0)))


def describe(user: PunUser | None, paths: PunPaths, state: dict | None) -> dict:
    """The JSON that status/show/start print about one PUN."""
    running = is_running(state)
    info: dict = {
        "user": state["user"] if state else (user.name if user else None),
        "running": running,
    }
    if state:
        info.update(
            socket=state.get("socket"),
            groups=state["groups"],
            started_at=state["started_at"],
            pids={"nginx": state["nginx"]["pid"], "server": state["server"]["pid"]},
        )
    if running:
        try:
            info["busy_requests"] = busy_requests(state["socket"])
        except (PunError, KeyError):
            info["busy_requests"] = None  # nginx runs but does not answer: never "idle"
        info["idle_seconds"] = round(time.time() - last_activity(paths, state), 1)
        # a terminal's shell (and what runs in it) lives on without any open connection
        info["shells"] = len(process.live_children(int(state["server"]["pid"])))
    if user is not None and state:
        info["groups_changed"] = state["groups"] != list(user.groups)
    return info


def status(name: str, config: StageConfig) -> dict:
    user = validate_user(name, config)
    paths = make_pun_paths(user.name, config)
    return describe(user, paths, pun_state(user, paths))


def show(name: str, config: StageConfig) -> dict:
    """status plus where everything of the PUN lives."""
    info = status(name, config)
    paths = make_pun_paths(name, config)
    info["paths"] = {k: getattr(paths, k) for k in PunPaths.__dataclass_fields__}
    info["prefix"] = make_pun_prefix(name, config)
    return info


def stop(name: str, config: StageConfig) -> dict:
    """Stop ``name``'s PUN (a no-op when none runs) and forget its state."""
    check_name(name, config)
    with user_lock(name, config):
        return _stop_locked(name, config)


def _stop_locked(name: str, config: StageConfig) -> dict:
    paths = make_pun_paths(name, config)
    state = process.read_json(paths.state_file)
    was_running = is_running(state)
    if state:
        procs = [state[k] for k in ("server", "nginx") if state.get(k)]
        process.terminate(procs, state["uid"], config.stop_timeout)
        os.unlink(paths.state_file)
    return {"user": name, "running": False, "stopped": was_running}


def known_users(config: StageConfig) -> list[str]:
    """Users that have a PUN state file (running or left behind)."""
    try:
        names = os.listdir(config.state_root)
    except FileNotFoundError:
        return []
    return sorted(
        n[: -len(".json")] for n in names if n.endswith(".json") and not n.startswith(".")
    )


def list_puns(config: StageConfig) -> list[dict]:
    result = []
    for name in known_users(config):
        paths = make_pun_paths(name, config)
        result.append(describe(None, paths, process.read_json(paths.state_file)))
    return result


def clean(
    config: StageConfig, idle_timeout: float | None = None, users: list[str] | None = None
) -> list[dict]:
    """Stop PUNs that are dead or idle past the timeout; never one serving a request or
    keeping a terminal's shell."""
    timeout = config.pun_idle_timeout if idle_timeout is None else idle_timeout
    names = known_users(config)
    if users is not None:
        names = [check_name(n, config) for n in users if n in names]
    cleaned = []
    for name in names:
        with user_lock(name, config):
            paths = make_pun_paths(name, config)
            info = describe(None, paths, process.read_json(paths.state_file))
            if info["running"] and not (
                info["busy_requests"] == 0
                and info["idle_seconds"] >= timeout
                and info["shells"] == 0
            ):
                # busy, recently used, a shell still open (terminals end after the shell
                # extension's own idle time), or its nginx cannot tell (busy_requests None)
                continue
            _stop_locked(name, config)
        cleaned.append(
            {"user": name, "was_running": info["running"], "idle_seconds": info.get("idle_seconds")}
        )
    return cleaned
