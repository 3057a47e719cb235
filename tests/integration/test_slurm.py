"""The scheduler layer on the real single-node Slurm that `make test` starts (scripts/slurm.sh):
jobs of real users, one shared status query, cancel, and a controller that goes away and comes
back."""

import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import REPO, run, slurm_cluster
from ondemand_hub.scheduler.slurm import SlurmCommands, parse_partitions, parse_squeue
from ondemand_hub.scheduler.slurm import run as run_slurm
from ondemand_hub.scheduler.status import StatusCache

SLURM = SlurmCommands()
SLURM_SH = str(REPO / "scripts" / "slurm.sh")


@pytest.fixture(scope="module", autouse=True)
def slurm_up():
    done = run("bash", SLURM_SH, "status", check=False)
    if done.returncode != 0:
        pytest.fail(f"Slurm is not running (make test starts it): {done.stdout}{done.stderr}")


def submit_as(user: str, *args: str) -> str:
    home = pwd.getpwnam(user).pw_dir  # the job's output goes where the user may write
    argv = [
        "runuser",
        "-u",
        user,
        "--",
        "sbatch",
        "--parsable",
        f"--chdir={home}",
        "-o",
        "/dev/null",
    ]
    out = run(*argv, *args).stdout
    return out.strip().split(";")[0]


def partition_cpus(partition: str) -> dict[str, int]:
    """CPUs of each node of ``partition``, as Slurm has them (never this machine's count)."""
    out = run("sinfo", "-h", "-N", "-p", partition, "-o", "%N %c").stdout
    return {name: int(cpus) for name, cpus in (line.split() for line in out.splitlines())}


def cache() -> StatusCache:
    async def query():
        return parse_squeue(await run_slurm(SLURM.squeue_all(), SLURM.env(), timeout=20))

    return StatusCache(query, interval=0)


async def wait_for_state(job_id: str, states: set[str], timeout: float = 30):
    status_cache = cache()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await status_cache.status(job_id)
        if status and status.state in states:
            return status
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never reached {states}: {status}")


async def test_a_users_job_runs_as_that_user_and_is_seen_by_the_shared_query(accounts):
    home = Path(accounts["odt-alice"].pw_dir)
    out = home / "slurm-uid.txt"
    out.unlink(missing_ok=True)
    job = submit_as(
        "odt-alice", "-p", "debug", "-t", "2", "-J", "odt-uid", "--wrap", f"id -u > {out}"
    )
    status = await wait_for_state(job, {"COMPLETED"})
    assert (status.user, status.name, status.partition) == ("odt-alice", "odt-uid", "debug")
    assert int(out.read_text()) == accounts["odt-alice"].pw_uid
    out.unlink()


async def test_pending_job_has_a_reason_and_cancel_ends_it(accounts):
    (cpus,) = partition_cpus("debug").values()  # the portal host's node, alone in debug
    hog = submit_as("odt-bob", "-p", "debug", "-c", str(cpus), "-t", "2", "--wrap", "sleep 60")
    waiting = submit_as(
        "odt-alice", "-p", "debug", "-c", str(cpus), "-t", "2", "--wrap", "sleep 60"
    )
    try:
        pending = await wait_for_state(waiting, {"PENDING"})
        assert pending.reason in ("Resources", "Priority")
        await run_slurm(SLURM.scancel(waiting), SLURM.env())
        await wait_for_state(waiting, {"CANCELLED"})
    finally:
        run("scancel", hog, waiting, check=False)


async def test_partitions_are_read_from_sinfo():
    partitions = parse_partitions(await run_slurm(SLURM.sinfo_partitions(), SLURM.env()))
    assert [(p.name, p.default) for p in partitions] == [
        ("debug", True),
        ("batch", False),
        ("compute", False),
    ]
    assert all(p.cpus_total == sum(partition_cpus(p.name).values()) for p in partitions)
    compute = next(p for p in partitions if p.name == "compute")
    assert compute.nodes == len(slurm_cluster()["nodes"]) >= 2


async def test_controller_down_means_unknown_then_recovers():
    pid = int(Path("/run/slurm/slurmctld.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and run("scontrol", "ping", check=False).returncode == 0:
            time.sleep(0.2)
        status_cache = cache()
        assert await status_cache.status("1") is None  # unknown, not "gone"
        assert "Unable to contact slurm controller" in status_cache.error
    finally:
        subprocess.run(["bash", SLURM_SH, "start"], check=True, capture_output=True)
    status_cache = cache()
    assert (await status_cache.status("999999")).state == "NOTFOUND"
    assert status_cache.error is None
