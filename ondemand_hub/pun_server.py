"""ondemand-pun-server: the jupyter-server of a PUN, started by ondemand-stage as the user.

It is jupyterhub-singleuser (hub OAuth, activity reports) with the portal's extensions enabled,
listening on the Unix socket that the PUN's nginx proxies to. It runs as the user, so it removes
a socket left behind by a previous run itself rather than having root touch the user's directory.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from urllib.parse import urlsplit, urlunsplit

#: The jupyter-server extensions every PUN loads (by module name; the hub side never imports them).
PUN_EXTENSIONS = ("ondemand_dashboard", "ondemand_files", "ondemand_sessions")
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
    from jupyterhub.singleuser.extension import main as singleuser_main

    singleuser_main(argv=make_server_argv(args.sock, extra))


#: Seconds a session's server trusts what the hub said about a visitor (JupyterHub's default is
#: 300): a collaborator whose share is taken back is refused within this time.
SESSION_AUTH_CACHE_SECONDS = 10


def session_main(argv: list[str] | None = None) -> None:
    """ondemand-session-server: plain jupyterhub-singleuser for an app session in a Slurm job
    (no portal extensions), started without the slow optional import."""
    skip_slow_optional_imports()
    from jupyterhub.singleuser import main as singleuser_main

    argv = sys.argv[1:] if argv is None else argv
    singleuser_main(argv=[f"--HubOAuth.cache_max_age={SESSION_AUTH_CACHE_SECONDS}", *argv])


if __name__ == "__main__":
    sys.exit(main())
