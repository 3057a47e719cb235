"""Fixtures for the jupyter-server extensions: a real jupyter-server (pytest-jupyter) with the
extension enabled and its site files, settings file and vendor directory under tmp_path.

The dashboard's tests use ``jp_server_config`` as is; the Files tests override it with
``files_server_config`` (both extensions, stand-in page templates, staging under tmp_path).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest
from jupyter_server.auth import IdentityProvider, User
from traitlets.config import Config

from ondemand_dashboard.paths import TEMPLATES_DIR
from ondemand_files.paths import quote_path

pytest_plugins = ["pytest_jupyter.jupyter_server"]


class OwnerIdentityProvider(IdentityProvider):
    """Token requests belong to the server's owner, "alice", as under JupyterHub.

    jupyter-server's default names each token session "Anonymous <moon>" with a random id;
    only the name changes here, authentication (token, login cookie, XSRF) is the real one.
    """

    def generate_anonymous_user(self, handler):
        return User(username="alice", name="alice", display_name="alice")


@pytest.fixture
def vendor_dir() -> Path:
    """The real npm install the portal serves Bootstrap from (see package.json)."""
    return Path("/opt/ondemand-hub/share/node_modules")


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """Site configuration directory with an empty announcements.d."""
    (tmp_path / "site" / "announcements.d").mkdir(parents=True)
    return tmp_path / "site"


@pytest.fixture
def announcements_dir(site_dir: Path) -> Path:
    return site_dir / "announcements.d"


@pytest.fixture
def motd_path(site_dir: Path) -> Path:
    return site_dir / "motd.md"


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    """The user's settings file; its directory does not exist yet."""
    return tmp_path / "home" / ".config" / "ondemand-hub" / "settings.json"


@pytest.fixture
def jp_server_config(dashboard_config):
    return dashboard_config


@pytest.fixture
def dashboard_config(announcements_dir, motd_path, settings_path, vendor_dir):
    """Server configuration with the dashboard extension."""
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"ondemand_dashboard": True},
                "identity_provider_class": OwnerIdentityProvider,
                # Strict, as in a PUN: an undecorated handler method fails the tests
                # (jupyter-server warns and pytest.ini turns warnings into errors).
                "allow_unauthenticated_access": False,
            },
            "DashboardExtensionApp": {
                "site_title": "Example HPC Portal",
                "announcements_dir": str(announcements_dir),
                "motd_path": str(motd_path),
                "settings_path": str(settings_path),
                "vendor_dir": str(vendor_dir),
            },
        }
    )


#: Stand-in page templates for the Files tests: they print the context the handlers pass as
#: JSON, so the tests check it exactly (the real templates are tested in the browser tests).
FILES_PAGE_TEMPLATE = """<!doctype html>
<script id="context" type="application/json">{
"path": {{ path|tojson }}, "parent": {{ parent|tojson }}, "parent_url": {{ parent_url|tojson }},
"breadcrumbs": {{ breadcrumbs|tojson }}, "favorites": {{ favorites|tojson }},
"page_size": {{ page_size|tojson }}, "sort": {{ sort|tojson }}, "order": {{ order|tojson }},
"hidden": {{ hidden|tojson }}, "api": {{ api|tojson }},
"max_upload_chunk": {{ max_upload_chunk|tojson }}, "max_edit_size": {{ max_edit_size|tojson }},
"nav_id": {{ nav_id|tojson }},
"path_json": {{ path_json|safe }}, "listing": {{ listing_json|safe }}}</script>
<p>{{ path }}</p>
"""

EDITOR_PAGE_TEMPLATE = """<!doctype html>
<script id="context" type="application/json">{
"path": {{ path|tojson }}, "name": {{ name|tojson }}, "file_name": {{ file_name|tojson }},
"dir": {{ dir|tojson }}, "css": {{ files_static_url("files.css")|tojson }},
"dir_url": {{ dir_url|tojson }}, "download_url": {{ download_url|tojson }},
"ace_mode": {{ ace_mode|tojson }}, "max_edit_size": {{ max_edit_size|tojson }},
"api": {{ api|tojson }}, "path_json": {{ path_json|safe }}}</script>
<p>{{ name }}</p>
"""


@pytest.fixture
def files_templates(tmp_path: Path) -> Path:
    """A template directory with the stand-in ``files.html`` and ``editor.html``."""
    directory = tmp_path / "files-templates"
    directory.mkdir()
    (directory / "files.html").write_text(FILES_PAGE_TEMPLATE)
    (directory / "editor.html").write_text(EDITOR_PAGE_TEMPLATE)
    return directory


@pytest.fixture
def pun_tmp(tmp_path: Path, monkeypatch) -> Path:
    """The PUN's private tmp dir (``$ONDEMAND_HUB_PUN_TMP``) with nginx's ``client_body``."""
    directory = tmp_path / "pun-tmp"
    (directory / "client_body").mkdir(parents=True)
    directory.chmod(0o700)
    monkeypatch.setenv("ONDEMAND_HUB_PUN_TMP", str(directory))
    return directory


@pytest.fixture
def files_root(tmp_path: Path) -> Path:
    """An empty directory the Files tests work in."""
    directory = tmp_path / "files"
    directory.mkdir()
    return directory


@pytest.fixture
def files_settings() -> dict:
    """Extra ``FilesExtensionApp`` settings; override the fixture to change them."""
    return {}


@pytest.fixture
def files_server_config(dashboard_config, files_templates, files_settings, pun_tmp):
    """Server configuration with the dashboard and the Files extension."""
    config = dashboard_config
    config.ServerApp.jpserver_extensions["ondemand_files"] = True
    config.FilesExtensionApp = Config(
        {"template_paths": [str(files_templates), TEMPLATES_DIR], **files_settings}
    )
    return config


class FilesClient:
    """Requests to the Files extension of the test server with the owner's token.

    Paths are percent-encoded byte for byte (non-UTF-8 names included, which jp_fetch cannot
    do); HTTP errors are returned, not raised.
    """

    def __init__(self, client, base_url: str, auth: dict[str, str]) -> None:
        self.client = client
        self.base_url = base_url
        self.auth = auth

    def url(self, kind: str, path: str = "", **query) -> str:
        suffix = "?" + urlencode(query) if query else ""
        return f"{self.base_url}files/{kind}{quote_path(path)}{suffix}"

    async def request(self, url: str, method: str = "GET", body=None, headers=None, **kwargs):
        if body is None and method in ("POST", "PUT"):
            body = b""
        return await self.client.fetch(
            url,
            method=method,
            body=body,
            headers={**self.auth, **(headers or {})},
            raise_error=False,
            follow_redirects=False,
            request_timeout=20,
            **kwargs,
        )

    async def api(self, method: str, endpoint: str, body=None, **query):
        """``(code, parsed JSON)`` of ``files/api/<endpoint>``."""
        data = None if body is None else json.dumps(body)
        url = self.url("api") + "/" + endpoint
        if query:
            url += "?" + urlencode(query)
        response = await self.request(url, method, data, {"Content-Type": "application/json"})
        return response.code, json.loads(response.body) if response.body else None

    async def listing(self, path: str, **query):
        """``(code, parsed JSON)`` of the JSON listing (or description) of ``path``."""
        response = await self.request(
            self.url("fs", path, **query), headers={"Accept": "application/json"}
        )
        return response.code, json.loads(response.body)


@pytest.fixture
def files_client(jp_serverapp, http_server_client, jp_base_url, jp_auth_header) -> FilesClient:
    return FilesClient(http_server_client, jp_base_url, jp_auth_header)


# --- the sessions extension -----------------------------------------------------------------


class FakeHubState:
    """What the fake hub REST API holds and saw: ``servers`` by name (JupyterHub server models)
    and every request as ``(method, path, query, JSON body, Authorization header)``."""

    def __init__(self) -> None:
        self.servers: dict[str, dict] = {}
        self.requests: list[tuple[str, str, str, object, str]] = []
        #: ``(status, message)`` the next POST answers with, as the hub does when the spawner
        #: refuses the options.
        self.fail_next_start: tuple[int, str] | None = None


def make_fake_hub_app(state: FakeHubState, user: str):
    """A FAKE of JupyterHub's REST API (only the user/server endpoints the sessions extension
    calls), served in the test process: no JupyterHub runs in these tests."""
    from tornado import web

    prefix = f"/hub/api/users/{user}"

    class FakeHubHandler(web.RequestHandler):
        def record(self) -> object:
            body = json.loads(self.request.body) if self.request.body else None
            state.requests.append(
                (
                    self.request.method,
                    self.request.path,
                    self.request.query,
                    body,
                    self.request.headers.get("Authorization", ""),
                )
            )
            return body

        def check_token(self) -> bool:
            if self.request.headers.get("Authorization") != "token fake-hub-token":
                self.set_status(403)
                self.finish({"status": 403, "message": "Forbidden"})
                return False
            return True

    class FakeUser(FakeHubHandler):
        def get(self) -> None:
            self.record()
            if self.check_token():
                pun = {"name": "", "ready": True, "pending": None, "url": f"/user/{user}/"}
                self.finish({"name": user, "servers": {"": pun, **state.servers}})

    class FakeServer(FakeHubHandler):
        def post(self, name: str) -> None:
            body = self.record()
            if not self.check_token():
                return
            if state.fail_next_start:
                status, message = state.fail_next_start
                state.fail_next_start = None
                self.set_status(status)
                self.finish({"status": status, "message": message})
                return
            state.servers[name] = {
                "name": name,
                "ready": False,
                "pending": "spawn",
                "stopped": False,
                "url": f"/user/{user}/{name}/",
                "progress_url": f"/hub/api/users/{user}/servers/{name}/progress",
                "started": "2025-01-01T10:00:00.000000Z",
                "last_activity": "2025-01-01T10:00:00.000000Z",
                "user_options": body["user_options"],
            }
            self.set_status(202)
            self.finish()

        def delete(self, name: str) -> None:
            body = self.record() or {}
            if not self.check_token():
                return
            if name not in state.servers:
                self.set_status(404)
                self.finish({"status": 404, "message": f"{user} has no server named {name}"})
                return
            if body.get("remove"):
                del state.servers[name]
            else:
                state.servers[name].update(ready=False, pending=None, stopped=True)
            self.set_status(204)
            self.finish()

    return web.Application([(prefix, FakeUser), (prefix + "/servers/([^/]+)", FakeServer)])


@pytest.fixture
def fake_hub(jp_asyncio_loop, monkeypatch) -> FakeHubState:
    """A FAKE JupyterHub REST API on a random local port (it stands in for the hub's REST API
    only), and the PUN environment pointing at it as user "alice"."""
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    state = FakeHubState()
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]

    async def start() -> HTTPServer:
        server = HTTPServer(make_fake_hub_app(state, "alice"))
        server.add_sockets(sockets)
        return server

    server = jp_asyncio_loop.run_until_complete(start())
    monkeypatch.setenv("JUPYTERHUB_API_URL", f"http://127.0.0.1:{port}/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "fake-hub-token")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    yield state
    server.stop()
    jp_asyncio_loop.run_until_complete(server.close_all_connections())


@pytest.fixture
def sessions_settings() -> dict:
    """Extra ``SessionsExtensionApp`` settings; override the fixture to change them."""
    return {}


@pytest.fixture
def sessions_server_config(dashboard_config, sessions_settings, tmp_path, monkeypatch):
    """Server configuration with the dashboard and the sessions extension, the bundled apps
    and an empty clusters.d (so the built-in local cluster)."""
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("ONDEMAND_HUB_BUNDLED_APPS", str(repo / "apps"))
    (tmp_path / "clusters.d").mkdir()
    monkeypatch.setenv("ONDEMAND_HUB_CLUSTERS_DIR", str(tmp_path / "clusters.d"))
    config = dashboard_config
    config.ServerApp.jpserver_extensions["ondemand_sessions"] = True
    config.SessionsExtensionApp = Config(
        {"app_dirs": [str(repo / "apps"), str(tmp_path / "site-apps")], **sessions_settings}
    )
    return config


# --- the real Slurm of the test machine -----------------------------------------------------------

SLURM_CLUSTER = "v2:\n  metadata:\n    title: Test Slurm\n  job:\n    adapter: slurm\n"


@pytest.fixture
def slurm_jobs():
    """Submit real Slurm jobs: ``submit(*sbatch_options, command="sleep 300")`` → job id
    (partition debug, 5 minutes, no output file); every one is cancelled afterwards."""
    jobs: list[str] = []

    def submit(*options: str, command: str = "sleep 300") -> str:
        argv = ["sbatch", "--parsable", "-p", "debug", "-t", "5", "-o", "/dev/null", *options]
        argv += ["--wrap", command]
        out = subprocess.run(argv, check=True, capture_output=True, text=True, cwd="/tmp")
        jobs.append(out.stdout.strip().split(";")[0])
        return jobs[-1]

    yield submit
    if jobs:
        subprocess.run(["scancel", *jobs], check=False)


def dead_controller_cluster(tmp_path: Path, clusters_d: Path, cluster_id: str) -> None:
    """A cluster ``cluster_id`` in ``clusters_d`` whose (real) Slurm commands talk to a
    controller that does not answer: a copy of slurm.conf with another port, and
    ``MessageTimeout=1`` so they give up at once instead of after ~9 s."""
    conf = Path("/etc/slurm/slurm.conf").read_text()
    conf = re.sub(r"(?m)^SlurmctldHost=.*$", "SlurmctldHost=vm(127.0.0.1)", conf)
    conf += "\nSlurmctldPort=9\nMessageTimeout=1\n"
    (tmp_path / "down.conf").write_text(conf)
    (clusters_d / f"{cluster_id}.yml").write_text(
        SLURM_CLUSTER + f"    conf: {tmp_path / 'down.conf'}\n"
    )
