"""ondemand-pun-server: the jupyter-server of a PUN, started by ondemand-stage as the user.

It is jupyterhub-singleuser (hub OAuth, activity reports) with the portal's extensions enabled,
listening on the Unix socket that the PUN's nginx proxies to. It runs as the user, so it removes
a socket left behind by a previous run itself rather than having root touch the user's directory.
"""

from __future__ import annotations

import argparse
import importlib
import os
import stat
import sys
import types
from urllib.parse import urlsplit, urlunsplit

#: The jupyter-server extensions every PUN loads (by module name; the hub side never imports them).
PUN_EXTENSIONS = (
    "ondemand_dashboard",
    "ondemand_files",
    "ondemand_sessions",
    "ondemand_shell",
    "ondemand_jobs",
    "ondemand_status",
)
#: Extensions installed in the same venv for the app sessions (JupyterLab and what it enables)
#: that the PUN does not serve: they would cost every logged-in user memory and start time.
SESSION_ONLY_EXTENSIONS = (
    "jupyterlab",
    "jupyter_lsp",
    "notebook_shim",
    "jupyter_server_proxy",
    "jupyter_remote_desktop_proxy",
)


def make_server_argv(sock: str, extra: list[str]) -> list[str]:
    """Command-line config for jupyterhub-singleuser inside a PUN."""
    argv = [f"--ServerApp.sock={sock}", "--ServerApp.sock_mode=0600"]
    argv += [f"--ServerApp.jpserver_extensions={name}=True" for name in PUN_EXTENSIONS]
    argv += [f"--ServerApp.jpserver_extensions={name}=False" for name in SESSION_ONLY_EXTENSIONS]
    return argv + extra


def socket_service_url(url: str) -> str:
    """JUPYTERHUB_SERVICE_URL with jupyter-server's default port.

    jupyterhub-singleuser takes its port from this URL, and jupyter-server refuses a Unix socket
    together with any port but its default (8888). The public address is nginx's, not ours.
    """
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc="127.0.0.1:8888"))


def remove_stale_socket(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def skip_slow_optional_imports() -> None:
    """Make the optional ``rfc3987_syntax`` look absent before jupyter-server is imported.

    jsonschema imports it, when installed, to check the ``iri``/``uri-reference`` string formats;
    building its grammar costs ~0.6 s of the PUN's ~1.2 s start (``python -X importtime``).
    jupyter_events only uses those formats on its own event schemas, so nothing the portal
    relies on changes; every login gets its dashboard that much sooner.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


class _Deferred(types.ModuleType):
    """Stands in ``sys.modules`` for a module that is imported for real on first use of one of
    its attributes (then every attribute comes from the real module)."""

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # the import system's probes (__path__...) load nothing
        real = self.__dict__.get("_real")
        if real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            self.__dict__["_real"] = real
        return getattr(real, attr)


def defer_hub_only_imports() -> None:
    """Keep the hub's database layer out of a single-user server unless something uses it.

    ``jupyterhub.singleuser`` imports ``jupyterhub.log`` for ``log_request``, and that module
    imports ``jupyterhub.handlers.pages`` (for an ``isinstance`` test against the hub's health
    check handler) and ``jupyterhub.metrics``, which imports ``jupyterhub.orm``: SQLAlchemy and
    alembic, ~0.2 s of every start and ~20 MB of every PUN, for code only the hub runs
    (``python -X importtime``). Here ``jupyterhub.orm`` and ``jupyterhub.handlers.pages`` are
    :class:`_Deferred` until used; the stand-in ``HealthCheckHandler`` is never routed in a
    single-user server, so the test it serves is false either way.
    """
    import jupyterhub
    from tornado.web import RequestHandler

    if "jupyterhub.orm" not in sys.modules:
        sys.modules["jupyterhub.orm"] = jupyterhub.orm = _Deferred("jupyterhub.orm")
    if "jupyterhub.handlers.pages" not in sys.modules:
        pages = _Deferred("jupyterhub.handlers.pages")

        class HealthCheckHandler(RequestHandler):
            """Stand-in for the hub's handler in ``jupyterhub.log``'s ``isinstance`` test."""

        pages.HealthCheckHandler = HealthCheckHandler
        sys.modules["jupyterhub.handlers.pages"] = pages


def skip_yarn_config_probe() -> None:
    """Spare a JupyterLab session the ``node yarn.js config --json`` run at import (~0.2 s).

    Importing ``jupyterlab.labapp`` computes the app's version through ``AppOptions``, whose
    ``registry`` default runs yarn to learn npm's registry, for building extensions from
    source. A session never builds (its extension manager is PyPI's); the default registry
    stands. Only where node is on PATH does this cost anything; without JupyterLab, nothing to do.
    """
    try:
        from jupyterlab import commands
    except ImportError:
        return
    commands._yarn_config = lambda logger: {"yarn config": {}, "npm config": {}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ondemand-pun-server")
    parser.add_argument("--sock", required=True, help="Unix socket to listen on")
    args, extra = parser.parse_known_args(argv)
    remove_stale_socket(args.sock)
    if os.environ.get("JUPYTERHUB_SERVICE_URL"):
        os.environ["JUPYTERHUB_SERVICE_URL"] = socket_service_url(
            os.environ["JUPYTERHUB_SERVICE_URL"]
        )
    skip_slow_optional_imports()
    defer_hub_only_imports()
    from jupyterhub.singleuser.extension import main as singleuser_main

    singleuser_main(argv=make_server_argv(args.sock, extra))


#: Seconds a session's server trusts what the hub said about a visitor (JupyterHub's default is
#: 300): a collaborator whose share is taken back is refused within this time.
SESSION_AUTH_CACHE_SECONDS = 10


def session_main(argv: list[str] | None = None) -> None:
    """ondemand-session-server: plain jupyterhub-singleuser for an app session in a Slurm job
    (no portal extensions), started without the slow optional import."""
    skip_slow_optional_imports()
    defer_hub_only_imports()
    skip_yarn_config_probe()
    from jupyterhub.singleuser import main as singleuser_main

    argv = sys.argv[1:] if argv is None else argv
    singleuser_main(argv=[f"--HubOAuth.cache_max_age={SESSION_AUTH_CACHE_SECONDS}", *argv])


if __name__ == "__main__":
    sys.exit(main())
