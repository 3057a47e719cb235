"""Benchmark: login → dashboard ready, and idle memory per logged-in user; ours beside its anchor.

Two real JupyterHubs run side by side on free ports, each with its configurable-http-proxy, PAM
login and the reference jupyterhub_config.py (bench/hub_config.py); they differ only in spawner:

* ours: PUNSpawner → ``ondemand-stage pun start`` → the user's PUN (nginx + jupyter-server with
  the portal's extensions); the user lands on /user/<u>/dashboard;
* anchor: JupyterHub's stock LocalProcessSpawner running jupyterhub-singleuser from the same
  venv; the user lands on /user/<u>/view/.profile (why that page: ANCHOR_LANDING).

Each run is a cold start: a fresh client POSTs the login form and then does what a browser does
(/hub/spawn → /hub/spawn-pending/<u> with its EventSource of progress events → reload →
/user/<u>/ → the OAuth redirects → the landing page) until the first 200 of the landing page.
Then the server is stopped as the "Stop My Server" button does (DELETE /hub/api/users/<u>/server
with the user's cookie) and every process of the user is waited for. Runs alternate between the
sides (and which side goes first) so both share the machine's noise. After the last run both
servers idle, then the RSS and PSS of all the user's server processes are summed.

Run as root: ``make bench-spawn``, or
``/opt/ondemand-hub/venv/bin/python bench/spawn.py [--runs N] [--write-docs]``.
Uses only its own accounts (odb-user1 for ours, odb-user2 for the anchor).
"""

from __future__ import annotations

import argparse
import datetime
import html
import json
import math
import os
import pwd
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(BENCH))

from common import git_describe, machine, write_docs_section  # noqa: E402

from harness import STAGE, VENV_BIN, Hub, children, ensure_account, make_state_dir, run  # noqa: E402

PYTHON = str(VENV_BIN / "python")
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench/spawn.py: begin -->", "<!-- bench/spawn.py: end -->"

OURS_USER, OURS_PASSWORD = "odb-user1", "Odb-bench-1!"
ANCHOR_USER, ANCHOR_PASSWORD = "odb-user2", "Odb-bench-2!"
OURS_LANDING = "dashboard"
#: The anchor's landing page, under /user/<u>/. jupyter-server alone (no JupyterLab in the venv)
#: has no home page; its /api/status or /api/contents answer 403 to a browser that has no
#: cookie for the server yet (APIHandler turns the login redirect into a 403), so a browser could
#: never land there after logging in. /view/<file> is the HTML page jupyter-server itself renders
#: (Jinja template, @web.authenticated → hub OAuth), the same kind of work as our dashboard;
#: .profile comes with every account from /etc/skel.
ANCHOR_LANDING = "view/.profile"

#: Where the time of one login goes, in the order a browser meets it.
PHASES = {
    "login": "login POST (PAM) and its redirect",
    "spawn": "GET /hub/spawn (the hub starts the server, answers within 1 s)",
    "wait": "spawn-pending page + progress events until ready",
    "auth": "redirects: /user/<u>/ → OAuth authorize → oauth_callback → landing",
    "page": "the landing page itself (first 200)",
}
POLL = 0.025  # seconds; only used if the spawn-pending page has no progress EventSource
EVENT_SOURCE = re.compile(r'new EventSource\("([^"]+)"\)')
HUB_SPAWN = re.compile(r"User (\S+) took ([0-9.]+) seconds to start")
LOG_LINE = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) [^\]]*\] (.*)$", re.M)


def log_events(text: str) -> list[tuple[float, str]]:
    """(epoch seconds, message) of every line of a JupyterHub or jupyter-server log."""
    return [
        (datetime.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%f").timestamp(), msg)
        for ts, msg in LOG_LINE.findall(text)
    ]


class BenchError(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# processes and memory


def user_pids(uid: int) -> list[int]:
    """Every process whose effective uid is ``uid`` (our benchmark accounts run nothing else)."""
    out = run("ps", "-u", str(uid), "-o", "pid=", check=False).stdout
    return sorted(int(p) for p in out.split())


def descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def proc_name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if words and words[0].startswith("nginx"):
        return " ".join(words[0].split()[:3])  # "nginx: master process" / "nginx: worker process"
    return " ".join(Path(w).name if i < 2 else w for i, w in enumerate(words[:2]))


def rollup(pid: int) -> tuple[int, int, int]:
    """RSS, PSS and USS (private pages) of one process in bytes, from /proc/<pid>/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0]) * 1024
    return fields["Rss"], fields["Pss"], fields["Private_Clean"] + fields["Private_Dirty"]


# ------------------------------------------------------------------------------------------------
# one side of the benchmark: a hub, a user, a landing page


@dataclass
class Side:
    key: str
    title: str
    user: str
    password: str
    landing: str
    hub: Hub
    stage_log: Path | None = None
    pun_log: Path | None = None
    records: list[dict] = field(default_factory=list)
    session: requests.Session | None = None
    _seen: dict = field(default_factory=dict)

    @property
    def uid(self) -> int:
        return pwd.getpwnam(self.user).pw_uid

    @property
    def target(self) -> str:
        return f"/user/{self.user}/{self.landing}"

    # -- the browser's path from the login POST to the landing page --

    def phase_of(self, path: str, redirect: bool) -> str:
        if path.startswith("/hub/spawn-pending/") or path.startswith(
            f"/hub/api/users/{self.user}/server/progress"
        ):
            return "wait"
        if path.startswith("/hub/spawn"):
            return "spawn"
        if path.startswith("/hub/api/oauth2/") or path.startswith(f"/user/{self.user}/"):
            return "auth" if redirect else "page"
        return "login"

    def login_to_landing(self, timeout: float) -> tuple[requests.Session, dict]:
        hub = self.hub.url
        s = requests.Session()
        s.get(f"{hub}/hub/login", timeout=10).raise_for_status()  # the page the user sees
        phases = dict.fromkeys(PHASES, 0.0)
        hops = []
        start = time.perf_counter()
        deadline = start + timeout
        r = s.post(
            f"{hub}/hub/login",
            data={"username": self.user, "password": self.password, "_xsrf": s.cookies["_xsrf"]},
            allow_redirects=False,
            timeout=30,
        )
        phases["login"] += time.perf_counter() - start
        hops.append(("POST /hub/login", r.status_code))
        if r.status_code != 302:
            raise BenchError(f"login of {self.user} refused: {r.status_code}")
        url = urljoin(r.url, r.headers["Location"])
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            r = s.get(url, allow_redirects=False, timeout=30)
            t1 = time.perf_counter()
            path = urlsplit(r.url).path
            phases[self.phase_of(path, r.is_redirect)] += t1 - t0
            hops.append((f"GET {path}", r.status_code))
            if r.is_redirect:
                url = urljoin(r.url, r.headers["Location"])
            elif r.status_code == 200 and path == self.target:
                return s, {"total": t1 - start, "phases": phases, "hops": hops}
            elif r.status_code == 200 and path.startswith("/hub/spawn-pending/"):
                self.wait_for_ready_event(s, r, deadline)  # then window.location.reload()
                phases["wait"] += time.perf_counter() - t1
                hops.append(("EventSource …/progress", "ready"))
            else:
                raise BenchError(f"{self.key}: unexpected {r.status_code} at {r.url}")
        raise BenchError(f"{self.key}: {self.target} not ready within {timeout} s")

    def wait_for_ready_event(self, s: requests.Session, page, deadline: float) -> None:
        """What spawn_pending.html does: listen to the progress EventSource until 'ready'."""
        found = EVENT_SOURCE.search(page.text)
        if not found:
            time.sleep(POLL)
            return
        url = urljoin(page.url, html.unescape(found.group(1)))
        read_timeout = max(1.0, deadline - time.perf_counter())
        with s.get(url, stream=True, timeout=(5, read_timeout)) as r:
            r.raise_for_status()
            buf = b""
            for chunk in r.iter_content(chunk_size=None):
                buf += chunk
                while b"\n\n" in buf:
                    event, buf = buf.split(b"\n\n", 1)
                    for line in event.splitlines():
                        if not line.startswith(b"data:"):
                            continue
                        data = json.loads(line[5:])
                        if data.get("ready"):
                            return
                        if data.get("failed"):
                            raise BenchError(f"{self.key}: spawn failed: {data.get('message')}")

    # -- stopping, as the "Stop My Server" button does --

    def stop_server(self, s: requests.Session, timeout: float = 30) -> None:
        api = f"{self.hub.url}/hub/api/users/{self.user}"
        xsrf = next(c.value for c in s.cookies if c.name == "_xsrf" and c.path.startswith("/hub"))
        headers = {"X-XSRFToken": xsrf}
        r = s.delete(f"{api}/server", headers=headers, timeout=timeout)
        if r.status_code not in (202, 204):
            raise BenchError(f"{self.key}: stop refused: {r.status_code} {r.text[:200]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = s.get(api, headers=headers, timeout=10).json()
            if model.get("server") is None and not model.get("pending") and not user_pids(self.uid):
                return
            time.sleep(0.05)
        raise BenchError(f"{self.key}: server of {self.user} did not stop within {timeout} s")

    # -- what the servers said about the run --

    def read_new(self, path: Path) -> str:
        """What was appended to ``path`` since the last call (or since skip_old_logs)."""
        try:
            with open(path, "rb") as f:
                f.seek(self._seen.get(path, 0))
                text = f.read().decode(errors="replace")
                self._seen[path] = f.tell()
        except FileNotFoundError:
            return ""
        return text

    def logs(self) -> list[Path]:
        paths = [self.hub.log_path]
        if self.key == "ours":
            paths += [self.stage_log, self.pun_log]
        return paths

    def skip_old_logs(self) -> None:
        for path in self.logs():
            self.read_new(path)

    def stage_start_times(self) -> tuple[float, float] | None:
        """Start and end (epoch seconds) of the last ``ondemand-stage pun start`` the hub ran."""
        starts = [
            (int(t0) / 1e9, int(t1) / 1e9)
            for t0, t1, _rc, cmd, user in (
                line.split() for line in self.read_new(self.stage_log).splitlines()
            )
            if cmd == "start" and user == self.user
        ]
        return starts[-1] if starts else None

    def one_run(self, timeout: float) -> tuple[requests.Session, dict]:
        s, rec = self.login_to_landing(timeout)
        hub_events = log_events(self.read_new(self.hub.log_path))
        took = [m for _, msg in hub_events if (m := HUB_SPAWN.search(msg)) and m[1] == self.user]
        rec["hub_spawn"] = float(took[-1][2]) if took else None
        if self.key == "ours":
            server_events = log_events(self.read_new(self.pun_log))
            t0, t1 = self.stage_start_times() or (None, None)
            if t0 is not None:
                rec["stage_start"] = t1 - t0
                info = json.loads(run(STAGE, "pun", "status", "--user", self.user).stdout)
                if info.get("started_at"):
                    rec["stage_spawned"] = info["started_at"] - t0
                    rec["stage_ready_wait"] = t1 - info["started_at"]
        else:
            server_events = hub_events  # jupyterhub-singleuser logs to the hub's output
            spawning = [t for t, msg in hub_events if msg.startswith("Spawning ")]
            t0 = spawning[-1] if spawning else None
        # jupyter-server's own log: when it listens, when the first readiness probe got its 200
        listening = [t for t, msg in server_events if "is running at:" in msg]
        if t0 is not None and listening:
            probes = [
                t
                for t, msg in server_events
                if msg.startswith(f"200 GET /user/{self.user}/api ") and t >= listening[-1]
            ]
            rec["server_up"] = listening[-1] - t0
            if probes:
                rec["noticed"] = probes[0] - listening[-1]
                if rec["hub_spawn"] is not None:
                    rec["spawn_rest"] = rec["hub_spawn"] - rec["server_up"] - rec["noticed"]
        return s, rec

    def server_pids(self) -> list[int]:
        if self.key == "ours":
            info = json.loads(run(STAGE, "pun", "status", "--user", self.user).stdout)
            roots = [info["pids"]["nginx"], info["pids"]["server"]]
            pids = set(roots)
            for pid in roots:
                pids.update(descendants(pid))
            stray = set(user_pids(self.uid)) - pids
            if stray:
                print(f"  note: {self.user} also runs {sorted(stray)} (not counted)")
            return sorted(pids)
        return user_pids(self.uid)

    def memory(self) -> dict:
        procs = []
        for pid in self.server_pids():
            rss, pss, uss = rollup(pid)
            procs.append({"pid": pid, "name": proc_name(pid), "rss": rss, "pss": pss, "uss": uss})
        return {
            "rss": sum(p["rss"] for p in procs),
            "pss": sum(p["pss"] for p in procs),
            "uss": sum(p["uss"] for p in procs),
            "procs": procs,
        }


# ------------------------------------------------------------------------------------------------
# setting up and tearing down


def start_hub(state_dir: Path, extra_env: dict) -> Hub:
    hub = Hub(state_dir, env=extra_env)
    shutil.copy(BENCH / "hub_config.py", hub.state_dir / "hub_config.py")
    return hub.start()


def clear_leftovers(side_user: str) -> None:
    """A previous, interrupted run may have left our own accounts' servers behind."""
    run(STAGE, "pun", "stop", "--user", side_user, check=False)
    for pid in user_pids(pwd.getpwnam(side_user).pw_uid):
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


# ------------------------------------------------------------------------------------------------
# context: what starting a server costs before it serves anything


def wall(argv: list[str], repeat: int = 3, **kw) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, **kw)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


SKIP = (
    "import ondemand_hub.pun_server as p; "
    "getattr(p, 'skip_slow_optional_imports', lambda: None)(); "
)
PUN_IMPORTS = "import jupyterhub.singleuser.extension, jupyter_server_terminals, ondemand_dashboard"


def as_user(name: str) -> dict:
    """subprocess arguments that run a command as ``name`` in an environment like a PUN's."""
    entry = pwd.getpwnam(name)
    env = {
        "HOME": entry.pw_dir,
        "USER": name,
        "LOGNAME": name,
        "SHELL": entry.pw_shell,
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    return dict(
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=os.getgrouplist(name, entry.pw_gid),
        env=env,
        cwd=entry.pw_dir,
    )


def context_numbers(user: str) -> list[tuple[str, float]]:
    rows = [
        ("`python -c pass` (interpreter start)", "pass"),
        (
            "`import jupyterhub.singleuser.extension` (anchor: what jupyterhub-singleuser imports)",
            "import jupyterhub.singleuser.extension",
        ),
        (
            "ours: the same + jupyter_server_terminals + ondemand_dashboard, after"
            " `ondemand-pun-server` makes the optional rfc3987_syntax look absent",
            SKIP + PUN_IMPORTS,
        ),
        (
            "`import sqlalchemy, alembic` alone (jupyterhub.singleuser pulls them in through"
            " jupyterhub.scopes → jupyterhub.orm)",
            "import sqlalchemy, alembic",
        ),
    ]
    # os._exit: time the imports, not the ~0.1 s the interpreter takes to tear them down
    found = [
        (name, wall([PYTHON, "-c", f"{code}; import os; os._exit(0)"], **as_user(user)))
        for name, code in rows
    ]
    found.append(
        (
            f"`ondemand-stage pun status --user {user}` (the helper's start and one status)",
            wall([STAGE, "pun", "status", "--user", user]),
        )
    )
    return found


# ------------------------------------------------------------------------------------------------
# statistics and the report


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def p90(xs: list[float]) -> float:
    """Nearest-rank 90th percentile (with 10 runs: the 9th fastest)."""
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def secs(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f} s"


def mb(x: float) -> str:
    return f"{x / 1e6:.0f} MB"


def ratio(anchor: float, ours: float) -> str:
    return f"{anchor / ours:.2f}×" if ours else "–"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def med_of(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None]
    return median(values) if values else None


def path_of(record: dict) -> str:
    return " → ".join(f"{hop} {status}" for hop, status in record["hops"])


def report(ours: Side, anchor: Side, mem: dict, ctx: list, meta: dict) -> str:
    o_tot = [r["total"] for r in ours.records]
    a_tot = [r["total"] for r in anchor.records]
    n = len(o_tot)
    o_mem, a_mem = mem["ours"], mem["anchor"]
    lines = [
        f"* Command: `{meta['command']}` (`make bench-spawn` runs it with the defaults, no docs)",
        f"* Date: {meta['date']}",
        f"* Machine: {meta['machine']}",
        f"* Code: the ondemand-hub package installed in {VENV_BIN.parent}; repo at {meta['git']}",
        f"* Load average (1 min): {meta['load_start']} at the start, {meta['load_end']} at the"
        " end — other developers' tests may share the CPUs during a run",
        "",
        "| | ours: PUNSpawner → PUN (nginx + jupyter-server) "
        "| anchor: LocalProcessSpawner → jupyterhub-singleuser | anchor / ours | goal for ours |",
        "|---|---|---|---|---|",
        f"| login → landing page ready, median of {n} cold starts | {secs(median(o_tot))} "
        f"| {secs(median(a_tot))} | {ratio(median(a_tot), median(o_tot))} "
        f"| ≤ 1 s: {verdict(median(o_tot) <= 1.0)} |",
        f"| login → landing page ready, p90 | {secs(p90(o_tot))} | {secs(p90(a_tot))} "
        f"| {ratio(p90(a_tot), p90(o_tot))} | |",
        f"| login → landing page ready, min – max | {secs(min(o_tot))} – {secs(max(o_tot))} "
        f"| {secs(min(a_tot))} – {secs(max(a_tot))} | | |",
        f"| idle memory per logged-in user, RSS sum | {mb(o_mem['rss'])} | {mb(a_mem['rss'])} "
        f"| {ratio(a_mem['rss'], o_mem['rss'])} | ≤ 100 MB: {verdict(o_mem['rss'] <= 100e6)} |",
        f"| idle memory per logged-in user, PSS sum | {mb(o_mem['pss'])} | {mb(a_mem['pss'])} "
        f"| {ratio(a_mem['pss'], o_mem['pss'])} | ≤ 100 MB: {verdict(o_mem['pss'] <= 100e6)} |",
        f"| idle memory per logged-in user, USS sum (private pages) | {mb(o_mem['uss'])} "
        f"| {mb(a_mem['uss'])} | {ratio(a_mem['uss'], o_mem['uss'])} "
        f"| ≤ 100 MB: {verdict(o_mem['uss'] <= 100e6)} |",
        "",
        f"Landing pages: ours `/user/<u>/{OURS_LANDING}`, anchor `/user/<u>/{ANCHOR_LANDING}`. "
        f"MB = 10⁶ bytes. Memory after {meta['idle']:.0f} s idle following the last login.",
        "",
        "Where the time goes (medians; the first five rows split each login in the order a"
        " browser meets them; their medians need not add up to the median total):",
        "",
        "| step | ours | anchor |",
        "|---|---|---|",
    ]
    for key, text in PHASES.items():
        o = median([r["phases"][key] for r in ours.records])
        a = median([r["phases"][key] for r in anchor.records])
        lines.append(f"| {text} | {secs(o)} | {secs(a)} |")
    lines += [
        '| hub log: spawn until the server answers ("User <u> took X seconds to start") '
        f"| {secs(med_of(ours.records, 'hub_spawn'))} "
        f"| {secs(med_of(anchor.records, 'hub_spawn'))} |",
        '| … spawner start → jupyter-server listening (its log: "is running at"; ours counts'
        ' from the start of `ondemand-stage pun start`, the anchor from "Spawning") '
        f"| {secs(med_of(ours.records, 'server_up'))} "
        f"| {secs(med_of(anchor.records, 'server_up'))} |",
        "| … listening → first readiness probe answered (ours: ondemand-stage polls every 20 ms"
        " through nginx; anchor: the hub's wait_up, exponential backoff with jitter) "
        f"| {secs(med_of(ours.records, 'noticed'))} "
        f"| {secs(med_of(anchor.records, 'noticed'))} |",
        "| … the rest (hub before the spawner; ours: the helper's exit and the hub's own probe) "
        f"| {secs(med_of(ours.records, 'spawn_rest'))} "
        f"| {secs(med_of(anchor.records, 'spawn_rest'))} |",
        f"| `ondemand-stage pun start`, whole call | {secs(med_of(ours.records, 'stage_start'))}"
        " | – |",
        "| … until nginx and jupyter-server are spawned (helper start, checks, config, nginx -t) "
        f"| {secs(med_of(ours.records, 'stage_spawned'))} | – |",
        "| … waiting for jupyter-server to answer through nginx "
        f"| {secs(med_of(ours.records, 'stage_ready_wait'))} | – |",
        "",
        "The path of the last login (status codes; the timed part starts at the POST):",
        "",
        f"* ours: {path_of(ours.records[-1])}",
        f"* anchor: {path_of(anchor.records[-1])}",
        "",
        "Processes counted (idle):",
        "",
    ]
    for side, m in (("ours", o_mem), ("anchor", a_mem)):
        parts = ", ".join(
            f"{p['name']} {mb(p['rss'])} RSS / {mb(p['pss'])} PSS" for p in m["procs"]
        )
        lines.append(f"* {side}: {parts}")
    lines += [
        "",
        f"Context — imports a server does before it serves anything, run alone as {OURS_USER}"
        " in a PUN-like environment (median of 3; noisy on a shared machine):",
        "",
        "| command | wall time |",
        "|---|---|",
        *[f"| {name} | {secs(t)} |" for name, t in ctx],
    ]
    return "\n".join(lines) + "\n"


EXPLANATION = """\
## Login → dashboard ready, and idle memory per user (`bench/spawn.py`)

**What is measured.** Two real JupyterHubs run side by side on the same machine in one run, each
with its configurable-http-proxy, PAM login and the reference `jupyterhub_config.py`
(`bench/hub_config.py`). They differ only in the spawner: *ours* is `PUNSpawner`, which asks
`ondemand-stage pun start` for the user's PUN (nginx + jupyter-server with the portal's
extensions); the *anchor* is JupyterHub's stock `LocalProcessSpawner` running
`jupyterhub-singleuser` from the same venv (PRODUCT.md: ~1.6–2.2 s elsewhere).

* **login → landing page ready**: a fresh HTTP client (requests; no cookies) POSTs the login
  form and then does what a browser does, timed from the POST to the first 200 of the landing
  page: `/hub/spawn` (the hub starts the server and waits up to 1 s) → `/hub/spawn-pending/<u>`
  with its progress EventSource until the `ready` event → reload → `/user/<u>/` → OAuth
  authorize → `oauth_callback` → the landing page. Ours lands on `/user/<u>/dashboard`. The
  anchor lands on `/user/<u>/view/.profile`: jupyter-server alone has no home page, and its
  `/api/status` or `/api/contents` answer 403 to a browser that has no cookie for the server yet
  (an API handler never redirects to a login), so a browser could not land there; `/view/<file>`
  is the HTML page jupyter-server itself renders behind the hub's OAuth, the same kind of work as
  our dashboard. Each run is a cold start of the user's server processes (the OS page cache is
  warm for both): after it, the server is stopped as the "Stop My Server" button does (`DELETE
  /hub/api/users/<u>/server` with the user's cookie) and the benchmark waits until no process
  of the user is left. Runs alternate between the sides (and which side goes first); one warm-up
  login per side is not counted. Median and p90 (nearest rank) over the counted runs.
* **where the time goes**: the client's time per step of that path; the hub's own log line
  "User <u> took X seconds to start" (spawn until the hub's first `GET …/api` answers), split
  with jupyter-server's log into "until it listens" ("is running at") and "until a readiness
  probe notices" (its first `200 GET /user/<u>/api`); for ours also the time of
  `ondemand-stage pun start` (the hub runs it through `bench/stage_timer.sh`, which adds ~2–3
  ms), split at the `started_at` the helper records once nginx and jupyter-server are spawned.
  Log timestamps have millisecond resolution. The context table times plain imports, 3 times
  each, outside any server.
* **idle memory per logged-in user**: after the last login of each side, both servers idle; then
  RSS and PSS (`/proc/<pid>/smaps_rollup`) are summed over the user's server processes: ours =
  nginx master + worker + jupyter-server (pids from `ondemand-stage pun status`, plus their
  children); anchor = jupyterhub-singleuser (plus children). RSS counts pages shared between
  processes once per process; PSS splits them among the processes sharing them (including other
  users' processes on the machine, so it varies a little with what else runs); USS counts only
  the pages no other process shares, i.e. what one more logged-in user adds. The goal is stated
  for every measure; RSS is the strictest.
"""


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="cold starts per side (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted logins per side first")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before memory")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per login")
    parser.add_argument("--write-docs", action="store_true", help=f"also write {DOCS}")
    parser.add_argument("--keep", action="store_true", help="keep the hubs' state dirs and logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: it creates Unix accounts and starts real hubs and PUNs")
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    meta = {
        "command": shlex.join([PYTHON, "bench/spawn.py", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_start": loadavg(),
        "git": git_describe(),
        "idle": args.idle,
    }
    ensure_account(OURS_USER, OURS_PASSWORD)
    ensure_account(ANCHOR_USER, ANCHOR_PASSWORD)
    for user in (OURS_USER, ANCHOR_USER):
        clear_leftovers(user)

    sides: list[Side] = []
    failed = False
    try:
        print("starting two hubs ...", flush=True)
        ours_state = make_state_dir("bench-ours")
        stage_log = ours_state / "stage.log"
        ours_hub = start_hub(
            ours_state,
            {
                "ONDEMAND_HUB_STAGE_COMMAND": json.dumps(
                    ["/bin/sh", str(BENCH / "stage_timer.sh"), str(stage_log), STAGE]
                )
            },
        )
        shown = json.loads(run(STAGE, "pun", "show", "--user", OURS_USER).stdout)
        sides.append(
            Side(
                "ours",
                "PUNSpawner",
                OURS_USER,
                OURS_PASSWORD,
                OURS_LANDING,
                ours_hub,
                stage_log=stage_log,
                pun_log=Path(shown["paths"]["log_dir"]) / "jupyter.log",
            )
        )
        anchor_hub = start_hub(
            make_state_dir("bench-anchor"),
            {"ONDEMAND_BENCH_SIDE": "anchor", "ONDEMAND_BENCH_ANCHOR_URL": "/" + ANCHOR_LANDING},
        )
        sides.append(
            Side(
                "anchor",
                "LocalProcessSpawner",
                ANCHOR_USER,
                ANCHOR_PASSWORD,
                ANCHOR_LANDING,
                anchor_hub,
            )
        )
        ours, anchor = sides
        for side in sides:
            side.skip_old_logs()
        total = args.warmup + args.runs
        for i in range(total):
            last = i == total - 1
            counted = i >= args.warmup
            for side in sides if i % 2 == 0 else sides[::-1]:
                s, rec = side.one_run(args.timeout)
                if counted:
                    side.records.append(rec)
                if args.verbose or not counted:
                    tag = f"run {i - args.warmup + 1}" if counted else "warm-up"
                    phases = " ".join(f"{k}={v:.3f}" for k, v in rec["phases"].items())
                    print(f"  {tag:8} {side.key:6} {rec['total']:.3f} s  {phases}", flush=True)
                if last:
                    side.session = s
                else:
                    side.stop_server(s)
            if counted and not args.verbose:
                o, a = ours.records[-1]["total"], anchor.records[-1]["total"]
                n = i - args.warmup + 1
                print(f"  run {n:2}/{args.runs}: ours {o:.3f} s, anchor {a:.3f} s", flush=True)
        print(f"idling {args.idle:.0f} s, then reading memory ...", flush=True)
        time.sleep(args.idle)
        mem = {side.key: side.memory() for side in sides}
        for side in sides:
            side.stop_server(side.session)
        print("measuring start-up context ...", flush=True)
        ctx = context_numbers(OURS_USER)
        meta["load_end"] = loadavg()
    except BaseException:
        failed = True
        for side in sides:
            print(f"--- {side.key} hub log tail ---\n{side.hub.log_tail(30)}", file=sys.stderr)
        raise
    finally:
        for side in sides:
            side.hub.stop()
        for user in (OURS_USER, ANCHOR_USER):
            clear_leftovers(user)
        dirs = [side.hub.state_dir for side in sides]
        if args.keep or failed:
            print("kept: " + " ".join(str(d) for d in dirs), file=sys.stderr)
        else:
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)

    section = report(ours, anchor, mem, ctx, meta)
    print()
    print(section)
    if args.write_docs:
        write_docs_section(BEGIN, END, f"{EXPLANATION}\n### Results\n\n{section}")
        print(f"wrote {DOCS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
