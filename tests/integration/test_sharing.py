"""Sharing a session (JupyterHub sharing) on the real hub and Slurm, with three real accounts:
Sara shares her JupyterLab session with Sam through her PUN's sessions API; Sam reaches it,
Sue does not; Sara takes it back and Sam is refused again; bad names get a clear 400."""

import pytest

from harness import ensure_account, run, session_log_url, slurm_hub, wait_for

SARA, SAM, SUE = "odt-sara", "odt-sam", "odt-sue"
PASSWORDS = {SARA: "Sara-pw-9!", SAM: "Sam-pw-10!", SUE: "Sue-pw-11!"}


@pytest.fixture(scope="module")
def share_hub(accounts):
    for name, password in PASSWORDS.items():
        ensure_account(name, password)
    try:
        with slurm_hub("sharing") as hub:
            yield hub
    finally:
        run("scancel", "-u", SARA, check=False)


def xsrf(session, user):
    return next(c.value for c in session.cookies if c.name == "_xsrf" and user in c.path)


def visit(hub, s, url):
    """GET ``url`` like a browser: follow the OAuth dance, confirming JupyterHub's
    "authorize access" page when it asks (visiting someone else's server)."""
    r = s.get(url, timeout=30)
    if r.status_code == 200 and "/hub/api/oauth2/authorize" in r.url and "<form" in r.text:
        form = {"_xsrf": s.cookies.get("_xsrf", path="/hub/")}
        r = s.post(r.url, data=form, timeout=30)
    return r


def reaches(hub, s, owner, name) -> bool:
    """A page first (API paths answer 403 rather than start the OAuth dance), then the API."""
    base = f"{hub.url}/user/{owner}/{name}"
    visit(hub, s, session_log_url(base))
    r = s.get(f"{base}/api/status", timeout=30)
    return r.status_code == 200 and r.url == f"{base}/api/status"


def test_share_a_session_and_take_it_back(share_hub):
    hub = share_hub
    sara, reply = hub.login(SARA, PASSWORDS[SARA])
    assert reply.status_code == 302, hub.log_tail()
    hub.open_dashboard(sara, SARA)
    sam, _ = hub.login(SAM, PASSWORDS[SAM])
    sue, _ = hub.login(SUE, PASSWORDS[SUE])

    api = f"{hub.url}/user/{SARA}/api/ondemand/sessions"
    headers = {"X-XSRFToken": xsrf(sara, SARA)}
    r = sara.post(api, json={"app": "jupyter", "bc_num_hours": 1}, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    name = r.json()["name"]

    def ready():
        cards = sara.get(api, headers=headers, timeout=30).json()["sessions"]
        return any(c["name"] == name and c["state"] == "running" for c in cards)

    wait_for(ready, 90, "session running", hub)
    assert reaches(hub, sara, SARA, name)
    assert not reaches(hub, sam, SARA, name)

    shares = f"{api}/{name}/shares"
    for bad, words in [
        ("odt-nobody-here", "no user"),
        (SARA, "yours already"),
        ("a;id", "login name"),
        ("", "login name"),
    ]:
        r = sara.post(shares, json={"user": bad}, headers=headers, timeout=30)
        assert r.status_code == 400 and r.json()["field"] == "user", r.text
        assert words in r.json()["message"], r.text
    r = sara.post(shares, json={"user": SAM}, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    listed = sara.get(shares, headers=headers, timeout=30).json()
    assert [s["user"] for s in listed["shares"]] == [SAM]
    assert listed["url"] == f"/user/{SARA}/{name}/"

    assert reaches(hub, sam, SARA, name)
    assert not reaches(hub, sue, SARA, name)
    # Sam's sessions page lists it under "Shared with you"; Sue's does not.
    hub.open_dashboard(sam, SAM)
    r = sam.get(
        f"{hub.url}/user/{SAM}/api/ondemand/shared",
        headers={"X-XSRFToken": xsrf(sam, SAM)},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["shared"] == [
        {"owner": SARA, "name": name, "url": f"/user/{SARA}/{name}/", "ready": True}
    ]
    hub.open_dashboard(sue, SUE)
    r = sue.get(
        f"{hub.url}/user/{SUE}/api/ondemand/shared",
        headers={"X-XSRFToken": xsrf(sue, SUE)},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["shared"] == [], r.text
    # Sam's share is for this session only: not Sara's PUN (dashboard, files).
    r = visit(hub, sam, f"{hub.url}/user/{SARA}/api/ondemand/sessions")
    assert r.status_code == 403, (r.status_code, r.url)

    r = sara.delete(f"{shares}/{SAM}", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert sara.get(shares, headers=headers, timeout=30).json()["shares"] == []
    # The session's server re-asks the hub within HubOAuth.cache_max_age (10 s).
    wait_for(lambda: not reaches(hub, sam, SARA, name), 30, "share taken back", hub)
    assert reaches(hub, sara, SARA, name)

    r = sara.delete(f"{api}/{name}", headers=headers, timeout=60)
    assert r.status_code == 200, r.text
