"""Benchmark: interactive sessions (Slurm jobs) against stock batchspawner ``SlurmSpawner``.

Two real JupyterHubs run side by side on free ports, each with its configurable-http-proxy, PAM
login and the reference jupyterhub_config.py, on the same real single-node Slurm; they differ
only in the spawner of named servers:

* ours: ``SlurmSessionSpawner`` (the reference config as it is; app ``jupyter``, 1 hour, the
  debug partition, the form's defaults: 1 CPU, 4 GB);
* anchor: batchspawner 1.3.0 ``SlurmSpawner`` with its defaults (``sudo -E -u {username}``
  before sbatch/squeue/scancel, its batch script, ``batchspawner-singleuser`` reporting the port
  to ``/hub/api/batchspawner``) asking Slurm for the same (bench/sessions_hub_config.py).

Measured, in one run:

* **submit → Connect**: from the REST API POST that starts a named server
  (``POST /hub/api/users/<u>/servers/<name>`` with ``user_options``) to the first 200 of
  ``/user/<u>/<name>/api/status`` through the proxy, with a logged-in browser session that does
  the OAuth redirects itself (an API path answers 403 to a browser with no cookie for the server
  yet, so on a 403 the client opens a page of the server, ``view/<file>``, like a browser
  clicking Connect, then asks again). ``--runs`` (default 5) runs per side, interleaved (the side
  going first alternates); after each run the server is deleted through the API and the next run
  waits until the job has left squeue, so every job is submitted to an idle node. One account
  per side (odb-sess1 ours, odb-sess2 anchor).
* **Slurm alone**: after each pair of runs, the time from submitting a job that only prints the
  time to its start, under the same conditions. Slurm starts a submitted job at its scheduler's
  next pass (``batch_sched_delay=0`` in scripts/slurm.sh; still up to ~1 s here), which both
  sides wait for alike: it is the noise in the totals. "The spawner's own part" is each side's
  median less that median.
* **scheduler calls per poll interval with 200 sessions**: 200 spawner objects of each class
  (no hub; the real classes, the real Slurm commands) watching one real running job are polled
  once, concurrently, as JupyterHub's periodic poll does; the Slurm commands each side actually
  executes are counted (a counting wrapper around each spawner's command runner that still runs
  the real command). Ours share one ``StatusCache`` per cluster; batchspawner runs
  ``sudo -E -u <user> squeue -j <id>`` per spawner.

Run as root: ``make bench-sessions``, or
``/opt/ondemand-hub/venv/bin/python bench/sessions.py [--runs N] [--write-docs]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import requests

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH))

from common import run_header, write_results  # noqa: E402

from harness import REPO, Hub, ensure_account, make_state_dir, run  # noqa: E402

BEGIN, END = "<!-- bench/sessions.py: begin -->", "<!-- bench/sessions.py: end -->"
SERVER = "bench"
SESSIONS = 200
SLURM_SH = str(REPO / "scripts" / "slurm.sh")


class Side:
    """One hub, one account, one way to ask for a session."""

    def __init__(self, key, title, user, password, user_options, page, config=None, env=None):
        self.key, self.title, self.user, self.password = key, title, user, password
        self.user_options, self.page, self.config, self.env = user_options, page, config, env
        self.hub: Hub | None = None
        self.times: list[float] = []

    def start(self) -> None:
        ensure_account(self.user, self.password)
        hub = Hub(make_state_dir(f"sessions-{self.key}"), env=self.env)
        if self.config:
            shutil.copy(self.config, hub.state_dir / "hub_config.py")
        self.hub = hub.start()
        # Log in without following the redirect to /hub/spawn (which would start the default
        # server): only the hub cookie is needed, for the OAuth redirects of the session.
        self.session = requests.Session()
        self.session.get(f"{hub.url}/hub/login", timeout=10)
        reply = self.session.post(
            f"{hub.url}/hub/login",
            data={
                "username": self.user,
                "password": self.password,
                "_xsrf": self.session.cookies.get("_xsrf"),
            },
            allow_redirects=False,
            timeout=30,
        )
        assert reply.status_code == 302, (reply.status_code, hub.log_tail())
        r = self.session.post(
            f"{hub.url}/hub/api/users/{self.user}/tokens",
            json={"note": "bench/sessions.py", "expires_in": 3600},
            headers={"X-XSRFToken": self.session.cookies.get("_xsrf", path="/hub/")},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        self.token = {"Authorization": f"token {r.json()['token']}"}

    def api(self, method: str, path: str, **kw) -> requests.Response:
        url = f"{self.hub.url}/hub/api/users/{self.user}{path}"
        return requests.request(method, url, headers=self.token, timeout=60, **kw)

    def jobs(self) -> list[str]:
        return run("squeue", "-h", "-u", self.user, "-o", "%i").stdout.split()

    def one_run(self, timeout: float = 180) -> float:
        base = f"{self.hub.url}/user/{self.user}/{SERVER}"
        target = f"{base}/api/status"
        t0 = time.perf_counter()
        r = self.api("POST", f"/servers/{SERVER}", json={"user_options": self.user_options})
        assert r.status_code in (201, 202), (r.status_code, r.text, self.hub.log_tail())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.session.get(target, timeout=30)
            if r.status_code == 200 and r.url == target and "started" in r.json():
                elapsed = time.perf_counter() - t0
                self.times.append(elapsed)
                return elapsed
            if r.status_code == 403 and r.url == target:  # no cookie for the server yet
                self.session.get(f"{base}/{self.page}", timeout=30)
                continue
            time.sleep(0.05)
        raise AssertionError(f"{self.title}: {target} not ready\n{self.hub.log_tail()}")

    def stop_server(self, timeout: float = 60) -> None:
        r = self.api("DELETE", f"/servers/{SERVER}")
        assert r.status_code in (202, 204), r.text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", "").json()["servers"].get(SERVER)
            if not model and not self.jobs():
                return
            time.sleep(0.2)
        raise AssertionError(f"{self.title}: server or job still there\n{self.hub.log_tail()}")

    def close(self) -> None:
        if self.hub is None:
            return
        try:
            if self.api("GET", "").json()["servers"].get(SERVER):
                self.api("DELETE", f"/servers/{SERVER}")
        except Exception:  # noqa: BLE001 - best effort; scancel below
            pass
        self.hub.stop()
        run("scancel", "-u", self.user, check=False)
        shutil.rmtree(self.hub.state_dir, ignore_errors=True)


def slurm_start_latency(user: str, timeout: float = 60) -> float:
    """Seconds from submitting a job that only prints the time to its start, as ``user``: what
    Slurm itself takes (its scheduler's cycle, the launch on the node) before any spawner code
    on the node runs. Measured between the runs, under the same conditions."""
    stamp = Path(f"/var/tmp/ondemand-hub-bench-{os.getpid()}-start")
    stamp.unlink(missing_ok=True)
    t0 = time.time()
    run(
        "runuser", "-u", user, "--", "sbatch", "--parsable", "-o", "/dev/null", "-p", "debug",
        "--wrap", f"date +%s.%N > {stamp}",
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stamp.exists() and stamp.read_text().strip():
            started = float(stamp.read_text())
            stamp.unlink()
            return started - t0
        time.sleep(0.01)
    raise AssertionError("a trivial job did not start")


def wait_idle(users: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(run("squeue", "-h", "-u", u, "-o", "%i").stdout.split() for u in users):
            return
        time.sleep(0.2)
    raise AssertionError(f"jobs of {users} still queued")


# -- scheduler calls per poll interval ---------------------------------------------------------


async def count_polls(user: str, job_id: str, clusters_dir: str, n: int) -> dict:
    """Poll ``n`` spawners of each class once, concurrently; count the Slurm commands run."""
    import batchspawner

    from ondemand_hub.scheduler import adapter, slurm_adapter
    from ondemand_hub.spawners import session

    fake_user = SimpleNamespace(name=user, escaped_name=user, url=f"/user/{user}/")
    result = {}

    # ours: the Slurm adapter's command runner, wrapped
    ours_calls: list[list[str]] = []
    real_run = slurm_adapter.run_command

    async def counting_run(argv, env, timeout=30.0, stdin=None):
        ours_calls.append(list(argv))
        return await real_run(argv, env, timeout=timeout, stdin=stdin)

    slurm_adapter.run_command = counting_run
    try:
        adapter.STATUS_CACHES.clear()
        spawners = []
        for _ in range(n):
            s = session.SlurmSessionSpawner(user=fake_user, clusters_dir=clusters_dir)
            s.job_id, s.cluster_id = job_id, "hpc"
            spawners.append(s)
        t0 = time.perf_counter()
        polled = await asyncio.gather(*(s.poll() for s in spawners))
        result["ours"] = (len(ours_calls), time.perf_counter() - t0, polled)
    finally:
        slurm_adapter.run_command = real_run

    # anchor: BatchSpawnerBase.run_command (a shell string), wrapped
    anchor_calls: list[str] = []
    real_bs_run = batchspawner.BatchSpawnerBase.run_command

    async def counting_bs_run(self, cmd, input=None, env=None):
        anchor_calls.append(cmd)
        return await real_bs_run(self, cmd, input=input, env=env)

    batchspawner.BatchSpawnerBase.run_command = counting_bs_run
    try:
        spawners = []
        for _ in range(n):
            # req_keepvars set: its default asks get_env(), which needs a hub (not used to poll)
            s = batchspawner.SlurmSpawner(user=fake_user, req_keepvars="PATH")
            s.job_id = job_id
            spawners.append(s)
        t0 = time.perf_counter()
        polled = await asyncio.gather(*(s.poll() for s in spawners))
        result["anchor"] = (len(anchor_calls), time.perf_counter() - t0, polled)
    finally:
        batchspawner.BatchSpawnerBase.run_command = real_bs_run
    result["ours_cmd"] = " ".join(ours_calls[0]) if ours_calls else ""
    result["anchor_cmd"] = anchor_calls[0] if anchor_calls else ""
    return result


def poll_benchmark(user: str, clusters_dir: str, n: int) -> dict:
    """One real running job (a sleep, as ``user``) watched by ``n`` spawners of each side."""
    out = run(
        "runuser", "-u", user, "--", "sbatch", "--parsable", "-p", "debug", "-t", "5",
        "-c", "1", "--mem=100M", "-J", "odb-poll", "-o", "/dev/null", "--chdir=/tmp",
        "--wrap", "sleep 600",
    )  # fmt: skip
    job_id = out.stdout.strip().split(";")[0]
    try:
        deadline = time.monotonic() + 30
        while run("squeue", "-h", "-j", job_id, "-o", "%T").stdout.strip() != "RUNNING":
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not start")
            time.sleep(0.2)
        result = asyncio.run(count_polls(user, job_id, clusters_dir, n))
    finally:
        run("scancel", job_id, check=False)
    for side in ("ours", "anchor"):
        polled = result[side][2]
        # every poll must say "still running" (None) for the count to mean anything
        assert all(p is None for p in polled), (side, set(polled))
    return result


# -- report ------------------------------------------------------------------------------------


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered) + 0.5) - 1))]


def report(ours: Side, anchor: Side, polls: dict, n: int, slurm_starts: list[float]) -> str:
    om, am = statistics.median(ours.times), statistics.median(anchor.times)
    ratio = om / am
    sm = statistics.median(slurm_starts)
    oc, ot, _ = polls["ours"]
    ac, at, _ = polls["anchor"]
    fmt = lambda ts: ", ".join(f"{t:.2f}" for t in ts)  # noqa: E731
    rows = [
        "| what | ours (SlurmSessionSpawner) | anchor (batchspawner SlurmSpawner) "
        "| ours vs anchor | goal |",
        "|---|---|---|---|---|",
        f"| submit → Connect, median of {len(ours.times)} | {om:.2f} s | {am:.2f} s "
        f"| {ratio:.2f}× | ≤ 0.5×: {'met' if ratio <= 0.5 else '**not met**'} |",
        f"| submit → Connect, p90 | {p90(ours.times):.2f} s | {p90(anchor.times):.2f} s "
        f"| {p90(ours.times) / p90(anchor.times):.2f}× | |",
        f"| submit → Connect, every run (s) | {fmt(ours.times)} | {fmt(anchor.times)} | | |",
        f"| Slurm alone: submit → a trivial job runs, median (runs: {fmt(slurm_starts)}) "
        f"| {sm:.2f} s | {sm:.2f} s | | the same for both |",
        f"| the spawner's own part: median − Slurm alone | {om - sm:.2f} s | {am - sm:.2f} s "
        f"| {(om - sm) / (am - sm):.2f}× | reported |",
        f"| scheduler commands per poll interval, {n} sessions | {oc} | {ac} "
        f"| 1 : {ac / max(oc, 1):.0f} "
        f"| 1 vs {n}: {'met' if oc == 1 and ac >= n else '**not met**'} |",
        f"| wall time of that poll of {n} sessions | {ot * 1000:.0f} ms | {at * 1000:.0f} ms "
        f"| {at / ot:.0f}× faster | reported |",
    ]
    notes = (
        f"\nCommands: ours `{polls['ours_cmd']}` once; "
        f"anchor `{polls['anchor_cmd']}` per session.\n"
    )
    return "\n".join(rows) + "\n" + notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="submit → Connect runs per side")
    parser.add_argument("--sessions", type=int, default=SESSIONS, help="pollers per side")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root (it creates Unix accounts and starts hubs)", file=sys.stderr)
        return 2
    if run("bash", SLURM_SH, "status", check=False).returncode != 0:
        print("Slurm is not running (bash scripts/slurm.sh start)", file=sys.stderr)
        return 2
    clusters = Path(f"/var/tmp/ondemand-hub-bench-{os.getpid()}-clusters.d")
    clusters.mkdir(exist_ok=True)
    (clusters / "hpc.yml").write_text(
        "v2:\n  metadata:\n    title: Bench HPC\n  job:\n    adapter: slurm\n"
    )
    env = {"ONDEMAND_HUB_CLUSTERS_DIR": str(clusters)}
    ours = Side(
        "ours", "ours", "odb-sess1", "Odb-sess-1!",
        {"app": "jupyter", "bc_num_hours": 1, "bc_queue": "debug"}, "view/output.log", env=env,
    )  # fmt: skip
    anchor = Side(
        "anchor", "anchor", "odb-sess2", "Odb-sess-2!", {}, "view/.profile",
        config=BENCH / "sessions_hub_config.py", env=env,
    )  # fmt: skip
    users = [ours.user, anchor.user]
    slurm_starts: list[float] = []
    try:
        for side in (ours, anchor):
            side.start()
        wait_idle(users)
        for i in range(args.runs):
            order = (ours, anchor) if i % 2 == 0 else (anchor, ours)
            for side in order:
                elapsed = side.one_run()
                print(f"run {i + 1} {side.title}: {elapsed:.2f} s", flush=True)
                side.stop_server()
                wait_idle(users)
            slurm_starts.append(slurm_start_latency(ours.user))
            print(f"run {i + 1} Slurm alone: {slurm_starts[-1]:.2f} s", flush=True)
            wait_idle(users)
    finally:
        for side in (ours, anchor):
            side.close()
    try:
        polls = poll_benchmark(ours.user, str(clusters), args.sessions)
    finally:
        shutil.rmtree(clusters, ignore_errors=True)
    table = report(ours, anchor, polls, args.sessions, slurm_starts)
    command = (
        f"bench/sessions.py{f' --runs {args.runs}' if args.runs != 5 else ''}"
        f"{' --write-docs' if args.write_docs else ''}"
    )
    extra = (
        f", Slurm {run('sinfo', '-V').stdout.split()[-1]}, "
        f"batchspawner {__import__('batchspawner').__version__}"
    )
    header = run_header(command, "bench-sessions", extra)
    print("\n" + header + table)
    if args.write_docs:
        write_results(__doc__, "Sessions", BEGIN, END, header + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
