"""Benchmark: the Files app against jupyter-server's own contents API and plain nginx, in one run.

One real JupyterHub (reference config, PAM login, PUNSpawner) and one user, ``odb-files``, whose
PUN serves both sides from the same processes, on the same data:

* **listing** a directory of ``--entries`` (default 100,000) empty files: ours
  ``GET files/fs/<dir>`` (JSON) — the first page, and the whole listing page by page — against
  the contents API ``GET api/contents/<dir>`` (what JupyterLab's file browser does);
* **download** of a ``--size-mib`` (default 1024) file of random bytes, with curl, the median of
  ``--rounds`` (default 5) interleaved runs: ours through the PUN's nginx directly and end to
  end through the front proxy, against nginx serving the same file straight from disk (a
  separate nginx, no portal in the path) and jupyter-server's ``/files/`` handler;
* **upload** of the same size: ours as the page does it (a resumable session, 64 MiB chunks, each
  written to disk by nginx) against the contents API's chunked upload as JupyterLab does it
  (1 MiB chunks, base64 in JSON); the peak RSS growth of the PUN's Python process is sampled
  every 20 ms during each.

Run as root: ``make bench-files``, or
``/opt/ondemand-hub/venv/bin/python bench/files.py [--entries N] [--size-mib M] [--write-docs]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH))

from common import PYTHON, run_header, write_results  # noqa: E402

from harness import Hub, ensure_account, free_port, make_state_dir, run, stage  # noqa: E402

USER, PASSWORD = "odb-files", "Odb-files-1!"
BEGIN, END = "<!-- bench/files.py: begin -->", "<!-- bench/files.py: end -->"
OUR_CHUNK = 64 * 2**20
JUPYTERLAB_CHUNK = 2**20  # @jupyterlab/filebrowser CHUNK_SIZE


def as_user(code: str, *args: str) -> None:
    """Run Python ``code`` as the benchmark user (files it makes are theirs)."""
    entry = pwd.getpwnam(USER)
    subprocess.run([PYTHON, "-c", code, *args], user=entry.pw_uid, group=entry.pw_gid, check=True)


MAKE_DATA = """
import os, sys
directory, entries, big, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
os.makedirs(directory, exist_ok=True)
for i in range(entries):
    open(os.path.join(directory, f"file-{i:06d}.dat"), "wb").close()
with open(big, "wb") as f:
    block = os.urandom(2**20)
    for _ in range(size // 2**20):
        f.write(block)
"""


class Client:
    """A logged-in browser session of the benchmark user, plus what curl needs."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.session, _ = hub.login(USER, PASSWORD)
        hub.open_dashboard(self.session, USER)
        self.prefix = f"/user/{USER}/"
        self.xsrf = next(
            c.value for c in self.session.cookies if c.name == "_xsrf" and USER in c.path
        )
        self.headers = {"X-XSRFToken": self.xsrf, "Accept": "application/json"}

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)

    def url(self, path: str) -> str:
        return self.hub.url + self.prefix + path

    def fs_url(self, abspath: str) -> str:
        return self.url("files/fs" + quote(abspath))


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def list_ours_first(c: Client, directory: str) -> int:
    r = c.session.get(c.fs_url(directory), params={"limit": 500}, headers=c.headers)
    r.raise_for_status()
    return len(r.json()["entries"])


def list_ours_whole(c: Client, directory: str) -> int:
    count, cursor = 0, None
    while True:
        params = {"limit": 5000, **({"cursor": cursor} if cursor else {})}
        r = c.session.get(c.fs_url(directory), params=params, headers=c.headers)
        r.raise_for_status()
        page = r.json()
        count += len(page["entries"])
        cursor = page.get("next_cursor")
        if not cursor:
            return count


def list_contents_api(c: Client, relpath: str) -> int:
    r = c.session.get(c.url("api/contents/" + quote(relpath)), headers=c.headers)
    r.raise_for_status()
    return len(r.json()["content"])


def curl_speed(url: str, cookie: str = "", unix_socket: str = "") -> float:
    """Bytes per second of one GET, body discarded, as curl measures it."""
    argv = ["curl", "-sf", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}", url]
    if unix_socket:
        argv += ["--unix-socket", unix_socket]
    if cookie:
        argv += ["-H", f"Cookie: {cookie}"]
    out = run(*argv).stdout.split()
    return float(out[0])


def start_plain_nginx(root: str, state: Path) -> tuple[int, subprocess.Popen]:
    """nginx serving ``root`` as static files: the anchor for downloads."""
    port = free_port()
    conf = state / "plain-nginx.conf"
    conf.write_text(
        f"pid {state}/plain-nginx.pid;\nerror_log {state}/plain-nginx-error.log;\n"
        "events {}\nhttp {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n"
        f"  client_body_temp_path {state}/cb;\n  proxy_temp_path {state}/pt;\n"
        f"  server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n"
    )
    proc = subprocess.Popen(
        [
            "/usr/sbin/nginx",
            "-c",
            str(conf),
            "-e",
            f"{state}/plain-nginx-error.log",
            "-g",
            "daemon off;",
        ]
    )
    time.sleep(0.5)
    return port, proc


class RSSSampler:
    """Peak RSS of a process while a block runs, sampled every 20 ms."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def __enter__(self):
        self.baseline = self.rss()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.baseline)


def upload_ours(c: Client, source: str, dest: str) -> None:
    size = os.path.getsize(source)
    r = c.session.post(
        c.url("files/api/uploads"), json={"path": dest, "size": size}, headers=c.headers
    )
    r.raise_for_status()
    upload = c.url("files/api/uploads/" + r.json()["id"])
    with open(source, "rb") as f:
        offset = 0
        while offset < size:
            chunk = f.read(OUR_CHUNK)
            last = offset + len(chunk) - 1
            headers = {**c.headers, "Content-Range": f"bytes {offset}-{last}/{size}"}
            r = c.session.put(upload, data=chunk, headers=headers)
            r.raise_for_status()
            offset = r.json()["offset"]
    assert r.json()["done"], r.text


def upload_contents_api(c: Client, source: str, relpath: str) -> None:
    """What JupyterLab does for a large file: base64 chunks of 1 MiB, the last one numbered -1."""
    size = os.path.getsize(source)
    url = c.url("api/contents/" + quote(relpath))
    with open(source, "rb") as f:
        number = 1
        while True:
            data = f.read(JUPYTERLAB_CHUNK)
            last = f.tell() >= size
            body = {
                "type": "file",
                "format": "base64",
                "name": os.path.basename(relpath),
                "path": relpath,
                "chunk": -1 if last else number,
                "content": base64.b64encode(data).decode(),
            }
            c.session.put(url, data=json.dumps(body), headers=c.headers).raise_for_status()
            if last:
                return
            number += 1


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "–"


def run_benchmark(args: argparse.Namespace) -> dict:
    ensure_account(USER, PASSWORD)
    home = pwd.getpwnam(USER).pw_dir
    data = f"{home}/bench-files"
    listing_dir, big = f"{data}/many", f"{data}/big.bin"
    shutil.rmtree(data, ignore_errors=True)
    print(f"making {args.entries} files and a {args.size_mib} MiB file ...", flush=True)
    as_user(MAKE_DATA, listing_dir, str(args.entries), big, str(args.size_mib * 2**20))
    run("/opt/ondemand-hub/venv/bin/ondemand-stage", "pun", "stop", "--user", USER)
    state = make_state_dir("bench-files")
    hub = Hub(state).start()
    plain = None
    try:
        c = Client(hub)
        pun = stage("status", "--user", USER)
        results: dict = {"entries": args.entries, "size_mib": args.size_mib}

        print("listing ...", flush=True)
        results["list_first"] = timed(lambda: list_ours_first(c, listing_dir), 5)
        results["list_whole"] = timed(lambda: list_ours_whole(c, listing_dir), 3)
        results["list_contents"] = timed(lambda: list_contents_api(c, "bench-files/many"), 2)
        assert results["list_whole"][1] == results["list_contents"][1] == args.entries

        print("downloading ...", flush=True)
        plain_port, plain = start_plain_nginx(data, state)
        cookie = c.cookie_header()
        # the PUN's nginx listens on a Unix socket only (root may enter its directory)
        pun_direct = f"http://localhost{c.prefix}files/fs{quote(big)}"
        targets = {
            "dl_nginx": (f"http://127.0.0.1:{plain_port}/big.bin", "", ""),
            "dl_ours_pun": (pun_direct, cookie, pun["socket"]),
            "dl_ours_proxy": (c.fs_url(big), cookie, ""),
            "dl_jupyter_files": (c.url("files/bench-files/big.bin"), cookie, ""),
        }
        speeds: dict[str, list[float]] = {key: [] for key in targets}
        for _ in range(args.rounds):  # interleaved, so every side sees the same noise
            for key, (url, cookie_header, unix_socket) in targets.items():
                speeds[key].append(curl_speed(url, cookie_header, unix_socket))
        results.update({key: statistics.median(v) for key, v in speeds.items()})

        print("uploading ...", flush=True)
        server_pid = pun["pids"]["server"]
        with RSSSampler(server_pid) as ours_rss:
            results["up_ours"] = timed(lambda: upload_ours(c, big, f"{data}/up-ours.bin"))[0]
        with RSSSampler(server_pid) as anchor_rss:
            results["up_contents"] = timed(
                lambda: upload_contents_api(c, big, "bench-files/up-contents.bin")
            )[0]
        results["rss_ours"], results["rss_contents"] = ours_rss.growth, anchor_rss.growth
        for name in ("up-ours.bin", "up-contents.bin"):
            assert os.path.getsize(f"{data}/{name}") == os.path.getsize(big), name
        return results
    finally:
        if plain:
            plain.terminate()
        hub.stop()
        run("/opt/ondemand-hub/venv/bin/ondemand-stage", "pun", "stop", "--user", USER)
        shutil.rmtree(state, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


def report(r: dict) -> str:
    gib = r["size_mib"] * 2**20
    mbps = lambda bps: f"{bps / 1e6:,.0f} MB/s"  # noqa: E731
    first, whole, contents = r["list_first"][0], r["list_whole"][0], r["list_contents"][0]
    up_ours, up_contents = gib / r["up_ours"], gib / r["up_contents"]
    rows = [
        "| what | ours | anchor | ours vs anchor | goal |",
        "|---|---|---|---|---|",
        f"| list {r['entries']:,} entries: first page (500) | {first * 1000:.0f} ms "
        f"| contents API, whole: {contents:.2f} s | {ratio(contents, first)} faster "
        f"| ≤ 0.1 s: {'met' if first <= 0.1 else '**not met**'} |",
        f"| list {r['entries']:,} entries: whole listing | {whole:.2f} s | {contents:.2f} s "
        f"| {ratio(contents, whole)} faster "
        f"| ≥ 10×: {'met' if contents >= 10 * whole else '**not met**'} |",
        f"| download {r['size_mib']} MiB behind the PUN (nginx X-Accel-Redirect) "
        f"| {mbps(r['dl_ours_pun'])} | nginx from disk: {mbps(r['dl_nginx'])} "
        f"| {ratio(r['dl_ours_pun'], r['dl_nginx'])} "
        f"| ≥ 0.9×: {'met' if r['dl_ours_pun'] >= 0.9 * r['dl_nginx'] else '**not met**'} |",
        f"| download end to end through the front proxy | {mbps(r['dl_ours_proxy'])} "
        f"| jupyter-server /files/: {mbps(r['dl_jupyter_files'])} "
        f"| {ratio(r['dl_ours_proxy'], r['dl_jupyter_files'])} | reported |",
        f"| upload {r['size_mib']} MiB | {mbps(up_ours)} ({r['up_ours']:.1f} s) "
        f"| contents API, 1 MiB base64 chunks: {mbps(up_contents)} ({r['up_contents']:.1f} s) "
        f"| {ratio(up_ours, up_contents)} "
        f"| ≥ 5×: {'met' if up_ours >= 5 * up_contents else '**not met**'} |",
        f"| PUN Python RSS growth during the upload | {r['rss_ours'] / 1e6:.0f} MB "
        f"| {r['rss_contents'] / 1e6:.0f} MB | | flat |",
    ]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--rounds", type=int, default=5, help="downloads per side (median)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root (it creates a Unix account and starts a hub)", file=sys.stderr)
        return 2
    results = run_benchmark(args)
    table = report(results)
    header = run_header(
        f"bench/files.py{' --write-docs' if args.write_docs else ''}", "bench-files"
    )
    print("\n" + header + table)
    if args.write_docs:
        write_results(__doc__, "Files", BEGIN, END, header + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
