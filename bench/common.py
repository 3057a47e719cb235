"""What the benchmarks in bench/ share: the machine's description, the code's version, and
writing one benchmark's section of docs/benchmarks.md without touching the others."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DOCS = REPO / "docs" / "benchmarks.md"
sys.path.insert(0, str(REPO / "tests"))

from harness import VENV_BIN, run  # noqa: E402

PYTHON = str(VENV_BIN / "python")


def write_docs_section(begin: str, end: str, body: str) -> None:
    """Replace the text between the markers ``begin`` and ``end`` (or append it)."""
    block = f"{begin}\n{body}{end}\n"
    if DOCS.exists():
        text = DOCS.read_text()
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1].lstrip("\n")
            text = head + block + ("\n" + tail if tail else "")
        else:
            text = text.rstrip("\n") + "\n\n" + block
    else:
        text = (
            "# Benchmarks\n\nEach benchmark in `bench/` runs our code and its anchor side by\n"
            'side, in one run, on the same machine (PRODUCT.md, "Numbers to reach").\n\n' + block
        )
    DOCS.write_text(text)


def git_describe() -> str:
    git = ["git", "-C", str(REPO)]
    sha = run(*git, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
    dirty = run(*git, "status", "--porcelain", "--untracked-files=no", check=False).stdout.strip()
    return f"git {sha or '?'}" + (" with uncommitted changes" if dirty else "")


def machine() -> str:
    mem = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    nginx = run("/usr/sbin/nginx", "-v", check=False).stderr.strip().split("/")[-1]
    versions = run(
        PYTHON,
        "-c",
        "import jupyterhub as h, jupyter_server as j; print(h.__version__, j.__version__)",
    ).stdout.split()
    debian = Path("/etc/debian_version").read_text().strip()
    return (
        f"{os.cpu_count()} CPUs (nproc {run('nproc').stdout.strip()}), {mem / 2**30:.1f} GiB RAM, "
        f"Linux {platform.release()}, Debian {debian}, Python {platform.python_version()}, "
        f"JupyterHub {versions[0]}, jupyter_server {versions[1]}, nginx {nginx}"
    )


def run_header(command: str, make_target: str, machine_extra: str = "") -> str:
    """The lines that open a benchmark's results: command, date, machine, code version."""
    return (
        f"* Command: `{PYTHON} {command}` (`make {make_target}`)\n"
        f"* Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC\n"
        f"* Machine: {machine()}{machine_extra}\n* Code: {git_describe()}\n\n"
    )


def write_results(module_doc: str, title: str, begin: str, end: str, text: str) -> None:
    """Write one benchmark's section: its module docstring (up to "Run as root") and results."""
    doc = module_doc.split("\n\n", 1)[1].split("\nRun as root")[0]
    write_docs_section(begin, end, f"## {title}\n\n{doc}\n\n### Results\n\n{text}")
    print("wrote docs/benchmarks.md")
