"""Slurm output parsers, against real output captured from Debian's Slurm 22.05
(tests/unit/data/slurm/README.md says how each file was made)."""

from pathlib import Path

import pytest

from ondemand_hub.scheduler.slurm import (
    SQUEUE_FORMAT,
    Partition,
    SlurmCommands,
    parse_partitions,
    parse_sbatch,
    parse_squeue,
    plain_reason,
)
from ondemand_hub.scheduler.status import JobStatus, SchedulerUnavailable

DATA = Path(__file__).parent / "data" / "slurm"


def test_squeue_text_gives_every_job_with_state_reason_node_and_times():
    jobs = parse_squeue((DATA / "squeue.txt").read_text())
    assert sorted(jobs, key=int) == [str(i) for i in range(1, 11)]
    assert jobs["3"] == JobStatus(
        job_id="3",
        state="RUNNING",
        reason="",
        node="vm",
        time_left="29:18",
        start_time="2026-11-22T23:24:09",
        user="odt-slurmtest",
        partition="debug",
        name="lab-running",
    )
    assert jobs["4"].state == "PENDING" and jobs["4"].reason == "Resources"
    assert jobs["4"].start_time == "2026-11-22T23:54:09"  # expected start
    assert (jobs["4"].node, jobs["7"].start_time) == ("", "")  # none yet; held: unknown
    assert jobs["2"].state == "COMPLETED"


def test_a_job_name_with_pipes_does_not_shift_fields():
    line = "12|RUNNING|None|alice|(null)|debug|1|1|1G|1:00|0:01|0:59|a|b|c|vm|vm|my|odd|name"
    assert parse_squeue(line)["12"].name == "my|odd|name"
    assert parse_squeue(line)["12"].node == "vm"


def test_lines_that_are_not_jobs_are_ignored():
    assert parse_squeue("squeue: warning: something\n\n") == {}


def test_the_format_has_the_name_last():
    assert SQUEUE_FORMAT.endswith("|%j") and SQUEUE_FORMAT.count("|") == 17


@pytest.mark.parametrize(
    "code, words",
    [
        ("Resources", "waiting for CPUs, memory or GPUs to free up"),
        ("(Priority)", "other jobs are ahead of it in the queue"),
        ("JobHeldUser", "held by you"),
        ("BeginTime", "waiting for the start time it was given"),
        (
            "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority"
            " partitions",
            "the nodes it needs are down, drained or kept for other partitions",
        ),
        ("SomethingNew", "SomethingNew"),
    ],
)
def test_pending_reasons_in_plain_words(code, words):
    assert plain_reason(code) == words


def test_partitions_from_sinfo():
    assert parse_partitions((DATA / "sinfo.txt").read_text()) == [
        Partition("debug", True, True, "1:00:00", 1, 0, 2, ""),
        Partition("batch", False, True, "2-00:00:00", 1, 0, 2, ""),
    ]


def test_lines_of_one_partition_in_several_node_states_are_merged():
    text = (
        "gpu|gpu|up|1-00:00:00|n/a|2|mixed|32|256000|8/24/0/32|gpu:a100:4|g[1-2]\n"
        "gpu|gpu|up|1-00:00:00|n/a|1|idle|32|256000|0/32/0/32|gpu:a100:4|g3\n"
    )
    assert parse_partitions(text) == [
        Partition("gpu", False, True, "1-00:00:00", 3, 56, 64, "gpu:a100:4")
    ]


@pytest.mark.parametrize(
    "out, job", [("42\n", "42"), ("42;ondemand\n", "42"), ("note\n17\n", "17")]
)
def test_sbatch_parsable_output(out, job):
    assert parse_sbatch(out) == job


@pytest.mark.parametrize("out", ["", "Submitted batch job\n", "abc;x"])
def test_sbatch_without_a_job_id_is_an_error(out):
    with pytest.raises(SchedulerUnavailable, match="sbatch printed no job id"):
        parse_sbatch(out)


def test_command_lines_are_argv_lists_with_the_cluster_options():
    slurm = SlurmCommands(bin_dir="/opt/slurm/bin", conf="/etc/slurm/owens.conf", cluster="owens")
    assert slurm.squeue_all() == [
        "/opt/slurm/bin/squeue",
        "-M",
        "owens",
        "-h",
        "-t",
        "all",
        "-o",
        SQUEUE_FORMAT,
    ]
    assert slurm.scancel("42") == ["/opt/slurm/bin/scancel", "-M", "owens", "42"]
    assert slurm.env()["SLURM_CONF"] == "/etc/slurm/owens.conf"
    with pytest.raises(ValueError, match="not a Slurm job id"):
        slurm.scancel("42; rm -rf /")
