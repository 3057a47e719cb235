"""The sessions extension in a real jupyter-server, talking to a FAKE JupyterHub REST API
(``fake_hub`` in conftest.py: a tiny tornado app in the test process, standing in for the hub's
REST API only): catalogue, form, launch validation, session cards, stop/delete/relaunch, XSRF."""

from __future__ import annotations

import json
import os
import shutil
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote

import pytest
from jupyter_server.utils import url_path_join

from ondemand_sessions.hub import HubError, _hub_error, server_name

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def jp_server_config(sessions_server_config, fake_hub):
    return sessions_server_config


@pytest.fixture
def sessions_settings():
    return {"required_commands": {"vscode": "no-such-command-for-ondemand-tests"}}


@pytest.fixture
def vscode_app(tmp_path):
    """A site app whose command is missing here."""
    directory = tmp_path / "site-apps" / "vscode"
    shutil.copytree(REPO / "apps" / "jupyter", directory)
    (directory / "manifest.yml").write_text("title: VS Code\ndescription: Code in the browser.\n")
    return directory


async def fetch(http_server_client, jp_base_url, jp_auth_header, path, method="GET", body=None):
    """``(code, parsed JSON or text)``; errors are returned, not raised."""
    response = await http_server_client.fetch(
        url_path_join(jp_base_url, path),
        method=method,
        body=None if body is None and method == "GET" else json.dumps(body or {}),
        headers={**jp_auth_header, "Content-Type": "application/json"},
        raise_error=False,
        follow_redirects=False,
        allow_nonstandard_methods=True,
    )
    text = response.body.decode()
    try:
        return response.code, json.loads(text)
    except ValueError:
        return response.code, text


@pytest.fixture
def call(http_server_client, jp_base_url, jp_auth_header):
    async def call(path, method="GET", body=None):
        return await fetch(http_server_client, jp_base_url, jp_auth_header, path, method, body)

    return call


def hub_calls(fake_hub, method=None):
    return [r for r in fake_hub.requests if method is None or r[0] == method]


# --- pages ---------------------------------------------------------------------------------


async def test_catalogue_lists_bundled_app_and_not_installed_one(call, vscode_app, jp_base_url):
    code, html = await call("apps/")

    assert code == 200
    assert "JupyterLab" in html
    assert f'href="{jp_base_url}apps/jupyter/new"' in html
    assert "VS Code" in html
    vscode_card = html.split('data-app-id="vscode"')[1]
    assert "not installed on this cluster" in vscode_card
    assert "apps/vscode/new" not in html


async def test_apps_without_slash_redirects(call, jp_base_url):
    code, _ = await call("apps")
    assert code == 302


async def test_form_renders_fields_with_defaults(call):
    code, html = await call("apps/jupyter/new")

    assert code == 200
    assert 'name="bc_num_hours" data-widget="number_field"' in html
    hours = html.split('name="bc_num_hours"')[1].split(">")[0]
    assert 'value="1"' in hours and 'min="1"' in hours and 'max="48"' in hours
    memory = html.split('name="bc_memory_gb"')[1].split(">")[0]
    assert 'value="4"' in memory and 'max="256"' in memory
    assert 'name="modules" data-widget="text_field"' in html
    assert "Environment modules to load first" in html
    assert '<option value="lab" selected>JupyterLab</option>' in html
    assert '<option value="tree">Classic Notebook</option>' in html
    # the local cluster has no partitions, accounts, GPUs or nodes: the form leaves them out
    for field in ("bc_queue", "bc_account", "bc_num_gpus", "bc_num_nodes"):
        assert f'name="{field}"' not in html
    assert 'id="local-cluster-note"' in html
    assert "sessions.js" in html


async def test_form_shows_remembered_values_that_are_still_valid(call, settings_path):
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(
        json.dumps({"app_forms": {"jupyter": {"bc_num_hours": 5, "bc_num_slots": 999, "gone": 1}}})
    )

    code, html = await call("apps/jupyter/new")

    assert code == 200
    assert 'value="5"' in html.split('name="bc_num_hours"')[1].split(">")[0]
    assert 'value="1"' in html.split('name="bc_num_slots"')[1].split(">")[0]


async def test_unknown_app_form_is_404(call):
    code, _ = await call("apps/nope/new")
    assert code == 404


async def test_sessions_page(call, jp_base_url):
    code, html = await call("sessions/")
    assert code == 200
    assert f'data-api="{jp_base_url}api/ondemand/sessions"' in html


# --- launching ---------------------------------------------------------------------------


async def test_unknown_field_is_refused_and_nothing_reaches_the_hub(call, fake_hub):
    code, body = await call(
        "api/ondemand/sessions", "POST", {"app": "jupyter", "bc_num_hours": 2, "runtime": "99"}
    )

    assert code == 400
    assert body == {"status": "error", "field": "runtime", "message": "unknown field 'runtime'"}
    assert hub_calls(fake_hub, "POST") == []


async def test_out_of_range_value_names_the_field(call, fake_hub):
    code, body = await call("api/ondemand/sessions", "POST", {"app": "jupyter", "bc_num_hours": 99})

    assert code == 400
    assert body["field"] == "bc_num_hours"
    assert body["message"] == "Hours must be a whole number from 1 to 48"
    assert hub_calls(fake_hub, "POST") == []


async def test_unknown_app_is_refused(call, fake_hub):
    code, body = await call("api/ondemand/sessions", "POST", {"app": "nope"})
    assert (code, body["field"]) == (400, "app")
    assert hub_calls(fake_hub) == []


async def test_not_installed_app_is_refused(call, fake_hub, vscode_app):
    code, body = await call("api/ondemand/sessions", "POST", {"app": "vscode"})
    assert (code, body["field"]) == (400, "app")
    assert "not installed on this cluster" in body["message"]
    assert hub_calls(fake_hub, "POST") == []


async def test_valid_launch_sends_exactly_the_user_options(call, fake_hub, settings_path):
    form = {"app": "jupyter", "bc_num_hours": "2", "modules": "python/3.11", "jupyter_ui": "tree"}

    code, body = await call("api/ondemand/sessions", "POST", form)

    assert code == 201
    assert body["status"] == "ok"
    assert body["name"] == "jupyter-1"
    assert body["sessions_url"].endswith("/sessions/")
    posts = hub_calls(fake_hub, "POST")
    assert len(posts) == 1
    method, path, _query, sent, auth = posts[0]
    assert path == "/hub/api/users/alice/servers/jupyter-1"
    assert sent == {"user_options": form}
    assert auth == "token fake-hub-token"
    # the values are remembered for the next form
    remembered = json.loads(settings_path.read_text())["app_forms"]["jupyter"]
    assert remembered == {"bc_num_hours": "2", "modules": "python/3.11", "jupyter_ui": "tree"}

    code, body = await call("api/ondemand/sessions", "POST", {"app": "jupyter"})
    assert (code, body["name"]) == (201, "jupyter-2")
    assert hub_calls(fake_hub, "POST")[-1][3] == {"user_options": {"app": "jupyter"}}


async def test_spawner_refusal_passes_through_with_its_field(call, fake_hub):
    fake_hub.fail_next_start = (400, "Invalid option 'bc_queue': Partition must be one of: debug")

    code, body = await call("api/ondemand/sessions", "POST", {"app": "jupyter"})

    assert code == 400
    assert body == {
        "status": "error",
        "field": "bc_queue",
        "message": "Partition must be one of: debug",
    }


async def test_hub_failure_is_a_clear_error(call, fake_hub):
    fake_hub.fail_next_start = (500, "Unhandled error starting server")
    code, body = await call("api/ondemand/sessions", "POST", {"app": "jupyter"})
    assert code == 502
    assert body["message"] == "JupyterHub failed: Unhandled error starting server"


async def test_no_hub_is_503(call, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_URL")
    code, body = await call("api/ondemand/sessions")
    assert code == 503
    assert "JupyterHub" in body["message"]


async def test_unreachable_hub_is_502(call, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")
    code, body = await call("api/ondemand/sessions")
    assert code == 502
    assert body["message"].startswith("JupyterHub did not answer")


# --- the sessions list and actions ---------------------------------------------------------


def model(name, **changes):
    base = {
        "name": name,
        "ready": False,
        "pending": None,
        "stopped": True,
        "url": f"/user/alice/{name}/",
        "progress_url": f"/hub/api/users/alice/servers/{name}/progress",
        "started": None,
        "last_activity": None,
        "user_options": {"app": "jupyter", "bc_num_hours": 3},
    }
    return {**base, **changes}


async def test_sessions_list_maps_server_models_to_cards(call, fake_hub, jp_base_url):
    fake_hub.servers = {
        "jupyter-1": model("jupyter-1", ready=True, stopped=False, started="2025-01-02T00:00Z"),
        "jupyter-2": model(
            "jupyter-2", pending="spawn", stopped=False, started="2025-01-03T00:00Z"
        ),
        "other-1": model("other-1", user_options={}),
    }

    code, body = await call("api/ondemand/sessions")

    assert code == 200
    cards = body["sessions"]
    assert [c["name"] for c in cards] == ["jupyter-2", "jupyter-1", "other-1"]  # the PUN left out
    home = quote(os.path.expanduser("~"))
    assert cards[1] == {
        "name": "jupyter-1",
        "app": "jupyter",
        "title": "JupyterLab",
        "icon": "journal-code",
        "state": "running",
        "message": "Ready",
        "connect_url": "/user/alice/jupyter-1/",
        "progress_url": None,
        "started": "2025-01-02T00:00Z",
        "last_activity": None,
        "user_options": {"app": "jupyter", "bc_num_hours": 3},
        "folder_url": f"{jp_base_url}files/fs{home}/ondemand/sessions/jupyter-1/",
        # the built-in local cluster: no scheduler to ask
        "cluster": "local",
        "scheduler": None,
        "job": None,
        "log_url": f"{jp_base_url}api/ondemand/sessions/jupyter-1/log",
        "thumbnail_url": None,
    }
    assert (cards[0]["state"], cards[0]["connect_url"]) == ("starting", None)
    # JupyterHub's own progress page, fed by the session spawner's progress()
    user = cards[0]["progress_url"].split("/")[-2]
    assert cards[0]["progress_url"] == f"/hub/spawn-pending/{user}/jupyter-2"
    assert (cards[2]["state"], cards[2]["app"], cards[2]["title"]) == ("stopped", None, "other-1")
    get = hub_calls(fake_hub, "GET")[0]
    assert (get[1], get[2]) == ("/hub/api/users/alice", "include_stopped_servers=1")


async def test_stop_and_delete_call_the_hub(call, fake_hub):
    fake_hub.servers = {"jupyter-1": model("jupyter-1", ready=True, stopped=False)}

    code, body = await call("api/ondemand/sessions/jupyter-1/stop", "POST")
    assert (code, body) == (200, {"status": "ok"})
    assert hub_calls(fake_hub, "DELETE")[-1][1:4] == (
        "/hub/api/users/alice/servers/jupyter-1",
        "",
        {"remove": False},
    )
    assert fake_hub.servers["jupyter-1"]["stopped"] is True

    code, body = await call("api/ondemand/sessions/jupyter-1", "DELETE")
    assert (code, body) == (200, {"status": "ok"})
    assert hub_calls(fake_hub, "DELETE")[-1][3] == {"remove": True}
    assert fake_hub.servers == {}

    code, body = await call("api/ondemand/sessions/jupyter-1", "DELETE")
    assert code == 404
    assert body["status"] == "error"


async def test_relaunch_starts_a_new_session_with_the_same_options(call, fake_hub):
    options = {"app": "jupyter", "bc_num_hours": 3, "jupyter_ui": "tree"}
    fake_hub.servers = {"jupyter-1": model("jupyter-1", user_options=options)}

    code, body = await call("api/ondemand/sessions/jupyter-1/relaunch", "POST")

    assert (code, body["name"]) == (201, "jupyter-2")
    post = hub_calls(fake_hub, "POST")[-1]
    assert (post[1], post[3]) == (
        "/hub/api/users/alice/servers/jupyter-2",
        {"user_options": options},
    )


async def test_bad_session_names_never_reach_the_hub(call, fake_hub):
    for path in ("api/ondemand/sessions/Bad_Name/stop", "api/ondemand/sessions/x/kill"):
        code, _ = await call(path, "POST")
        assert code == 404
    assert hub_calls(fake_hub) == []


async def test_post_without_xsrf_token_is_rejected_with_cookies(
    jp_fetch, jp_base_url, http_server_client, fake_hub
):
    page = await jp_fetch("sessions/")
    cookies = SimpleCookie()
    for header in page.headers.get_list("Set-Cookie"):
        cookies.load(header)
    assert "_xsrf" in cookies
    cookie_header = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
    url = url_path_join(jp_base_url, "api/ondemand/sessions")
    body = json.dumps({"app": "jupyter"})

    response = await http_server_client.fetch(
        url, method="POST", body=body, headers={"Cookie": cookie_header}, raise_error=False
    )
    assert response.code == 403
    assert hub_calls(fake_hub, "POST") == []

    response = await http_server_client.fetch(
        url,
        method="POST",
        body=body,
        headers={"Cookie": cookie_header, "X-XSRFToken": cookies["_xsrf"].value},
    )
    assert response.code == 201
    assert len(hub_calls(fake_hub, "POST")) == 1


# --- pure helpers ---------------------------------------------------------------------------


def test_server_names_follow_jupyterhub_rules():
    assert server_name("jupyter", []) == "jupyter-1"
    assert server_name("jupyter", ["jupyter-1", "jupyter-7", "jupyter-x", "other-9"]) == "jupyter-8"
    assert server_name("my_app", []) == "my-app-1"
    assert server_name("a" * 32, ["a" * 24 + "-9"]) == "a" * 24 + "-10"
    assert server_name("9lives", []) == "app-9lives-1"


def test_hub_errors_are_mapped():
    assert _hub_error(403, b"{}").status == 403
    assert _hub_error(404, b'{"message": "no such server"}').message == "no such server"
    error = _hub_error(400, b'{"message": "Invalid option \'modules\': Modules x"}')
    assert (error.status, error.field, error.message) == (400, "modules", "Modules x")
    assert isinstance(_hub_error(502, b"<html>"), HubError)


async def test_form_offers_the_real_slurm_partitions(call, tmp_path):
    # make test starts a real single-node Slurm (scripts/slurm.sh) before this runs
    assert shutil.which("sinfo"), "sinfo missing: run scripts/slurm.sh start"
    (tmp_path / "clusters.d" / "test.yml").write_text(
        "v2:\n  metadata:\n    title: Test\n  job:\n    adapter: slurm\n"
    )

    code, html = await call("apps/jupyter/new")

    assert code == 200
    queue = html.split('name="bc_queue" data-widget="select"')[1].split("</select>")[0]
    assert "disabled" not in queue.split(">")[0]
    assert '<option value="debug" selected>debug (default)</option>' in queue
