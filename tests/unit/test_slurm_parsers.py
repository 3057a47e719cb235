"""Slurm output parsers, against real output captured from Debian's Slurm 22.05
(tests/unit/data/slurm/README.md says how each file was made)."""

from pathlib import Path

import pytest

from ondemand_hub.scheduler.slurm import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    SQUEUE_START_FORMAT,
    Partition,
    SlurmCommands,
    format_time_left,
    job_ending,
    parse_accounts,
    parse_duration,
    parse_partitions,
    parse_sacct,
    parse_sbatch,
    parse_scontrol_job,
    parse_squeue,
    parse_squeue_start,
    plain_reason,
    plain_state,
    queue_position,
)
from ondemand_hub.scheduler.status import JobStatus, SchedulerUnavailable

DATA = Path(__file__).parent / "data" / "slurm"


def test_squeue_text_gives_every_job_with_state_reason_node_times_and_priority():
    jobs = parse_squeue((DATA / "squeue.txt").read_text())
    assert sorted(jobs, key=int) == [str(i) for i in range(186, 197)]
    assert jobs["189"] == JobStatus(
        job_id="189",
        state="RUNNING",
        reason="",
        node="vm",
        time_left="29:53",
        start_time="2026-11-23T00:25:56",
        user="odt-slurmtest",
        partition="debug",
        name="ondemand-jupyter-jupyter-1",
        priority=4294901571,
        batch_host="vm",
    )
    assert jobs["190"].state == "PENDING" and jobs["190"].reason == "Resources"
    assert jobs["190"].start_time == "2026-11-23T00:55:56"  # expected start
    assert (jobs["190"].node, jobs["193"].start_time) == ("", "")  # none yet; held: unknown
    assert jobs["193"].priority == 0  # held
    assert jobs["191"].priority < jobs["196"].priority  # --nice=1000, submitted earlier
    assert jobs["188"].state == "COMPLETED"


def test_a_two_node_job_has_a_node_list_and_one_batch_host():
    jobs = parse_squeue((DATA / "squeue_multinode.txt").read_text())
    assert (jobs["367"].node, jobs["367"].batch_host) == ("odh-node[1-2]", "odh-node1")
    assert jobs["367"].state == "RUNNING" and jobs["367"].partition == "compute"


def test_a_job_name_with_pipes_does_not_shift_fields():
    line = "12|RUNNING|None|alice|(null)|debug|1|1|1G|1:00|0:01|0:59|a|b|c|vm|vm|100|my|odd|name"
    assert parse_squeue(line)["12"].name == "my|odd|name"
    assert parse_squeue(line)["12"].node == "vm"
    assert parse_squeue(line)["12"].priority == 100


def test_lines_that_are_not_jobs_are_ignored():
    assert parse_squeue("squeue: warning: something\n\n") == {}


def test_the_format_has_the_name_last():
    assert SQUEUE_FORMAT.endswith("|%Q|%j") and SQUEUE_FORMAT.count("|") == 18
    assert SQUEUE_START_FORMAT.endswith("|%j")


# --- the queue ----------------------------------------------------------------------------


def test_queue_positions_follow_priority_within_each_partition():
    """The capture: in debug, 190 (Resources) is next, then 192; 194 waits for its begin time
    and 193 is held (no place, holding nobody up); 196, submitted after 191, is ahead of it
    because 191 was submitted with --nice=1000. 195 is alone in batch."""
    jobs = parse_squeue((DATA / "squeue.txt").read_text())
    positions = {job_id: queue_position(jobs, job_id) for job_id in jobs}
    assert positions == {
        "190": 1,
        "192": 2,
        "196": 3,
        "191": 4,
        "194": None,  # BeginTime
        "193": None,  # JobHeldUser, priority 0
        "195": 1,  # batch
        "189": None,  # running
        "186": None,
        "187": None,
        "188": None,
    }
    assert queue_position(jobs, "999") is None


def test_equal_priorities_go_by_job_id_and_a_multi_partition_job_takes_its_best_place():
    def job(job_id, partition, priority=10):
        return JobStatus(job_id, "PENDING", "Priority", partition=partition, priority=priority)

    jobs = {j.job_id: j for j in (job("9", "a"), job("10", "a"), job("11", "a,b"), job("8", "b"))}
    assert [queue_position(jobs, i) for i in ("9", "10", "11", "8")] == [1, 2, 2, 1]
    # a job over its partition's time limit (EnforcePartLimits=NO) waits forever: no place
    jobs["7"] = JobStatus("7", "PENDING", "PartitionTimeLimit", partition="a", priority=99)
    assert queue_position(jobs, "7") is None and queue_position(jobs, "9") == 1


def test_expected_starts_from_squeue_start():
    starts = parse_squeue_start((DATA / "squeue_start.txt").read_text())
    assert starts == {
        "190": "2026-11-23T00:55:56",
        "192": "2026-11-23T01:15:00",
        "194": "2026-11-23T01:25:55",
        "195": "2026-11-23T02:15:00",
        "196": "2026-11-23T04:15:00",
        "191": "2026-11-23T05:15:00",
        "193": "",  # N/A: not estimated yet
    }
    mine = parse_squeue_start((DATA / "squeue_start_user.txt").read_text())
    assert sorted(mine) == ["191", "193", "194", "195"]  # -u odt-slurmtest, run as that user
    # the same values as %S in the full listing taken at the same moment
    jobs = parse_squeue((DATA / "squeue.txt").read_text())
    assert all(jobs[i].start_time == start for i, start in starts.items())
    assert parse_squeue_start("squeue: error: x\n") == {}


@pytest.mark.parametrize(
    "text, seconds, words",
    [
        ("29:53", 29 * 60 + 53, "29 min"),
        ("0:59", 59, "under a minute"),
        ("1:00:00", 3600, "1 h 00 min"),
        ("2:05:09", 2 * 3600 + 5 * 60 + 9, "2 h 05 min"),
        ("1-00:00:00", 86400, "1 day 0 h"),
        ("2-03:00:00", 2 * 86400 + 3 * 3600, "2 days 3 h"),
        ("UNLIMITED", None, "no time limit"),
        ("NOT_SET", None, ""),
        ("INVALID", None, ""),
        ("1-02:03", None, ""),
        ("", None, ""),
    ],
)
def test_time_left_in_words(text, seconds, words):
    assert parse_duration(text) == seconds
    assert format_time_left(text) == words


def test_every_captured_time_left_is_understood():
    jobs = parse_squeue((DATA / "squeue.txt").read_text())
    assert all(parse_duration(j.time_left) is not None for j in jobs.values())


@pytest.mark.parametrize(
    "state, words",
    [
        ("PENDING", "queued"),
        ("RUNNING", "running"),
        ("COMPLETED", "ended"),
        ("TIMEOUT", "ended: it ran out of time"),
        ("NEW_STATE", "new state"),
    ],
)
def test_states_in_plain_words(state, words):
    assert plain_state(state) == words


# --- accounts -----------------------------------------------------------------------------


def test_accounts_from_sacctmgr():
    # tests/unit/data/slurm/README.md: written from sacctmgr(1), not captured (no slurmdbd here)
    text = (DATA / "sacctmgr_accounts.txt").read_text()
    assert parse_accounts(text) == ["chem-lab", "phys-2024", "proj_x.y"]


def test_sacctmgr_without_slurmdbd_prints_no_account():
    text = (DATA / "sacctmgr_no_slurmdbd.txt").read_text()
    assert "not running a supported accounting_storage plugin" in text
    assert parse_accounts(text) == []


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
    assert slurm.squeue_start("alice") == [
        "/opt/slurm/bin/squeue",
        "-M",
        "owens",
        "--start",
        "-h",
        "-u",
        "alice",
        "-o",
        SQUEUE_START_FORMAT,
    ]
    assert slurm.sacctmgr_accounts("alice") == [
        "/opt/slurm/bin/sacctmgr",
        "-nP",
        "show",
        "assoc",
        "user=alice",
        "cluster=owens",
        "format=account",
    ]
    assert SlurmCommands().sacctmgr_accounts("bob")[-2:] == ["user=bob", "format=account"]
    assert slurm.squeue_user("alice")[3:] == ["-h", "-t", "all", "-u", "alice", "-o", SQUEUE_FORMAT]
    assert slurm.squeue_pending(["debug", "gpu_a"])[3:] == [
        "-h",
        "-t",
        "PD",
        "-p",
        "debug,gpu_a",
        "-o",
        SQUEUE_FORMAT,
    ]
    for bad in (["a,b"], ["-x"], [""], []):
        with pytest.raises(ValueError):
            slurm.squeue_pending(bad)
    for bad in ("-alice", "a b", "alice,bob", ""):
        with pytest.raises(ValueError, match="not a user name"):
            slurm.squeue_start(bad)
        with pytest.raises(ValueError, match="not a user name"):
            slurm.sacctmgr_accounts(bad)
        with pytest.raises(ValueError, match="not a user name"):
            slurm.squeue_user(bad)


def test_scontrol_show_job_fields_from_real_output():
    failed = parse_scontrol_job((DATA / "scontrol_job_failed.txt").read_text())
    assert (failed["JobId"], failed["JobState"], failed["Reason"], failed["ExitCode"]) == (
        "8",
        "FAILED",
        "NonZeroExitCode",
        "3:0",
    )
    assert failed["AllocNode:Sid"] == "localhost:20899" and failed["Power"] == ""
    timeout = parse_scontrol_job((DATA / "scontrol_job_timeout.txt").read_text())
    assert (timeout["JobState"], timeout["Reason"], timeout["ExitCode"]) == (
        "TIMEOUT",
        "TimeLimit",
        "0:15",
    )
    assert parse_scontrol_job("slurm_load_jobs error: Invalid job id specified\n") == {}


def test_sacct_jobs_from_real_output():
    jobs = parse_sacct((DATA / "sacct_jobs.txt").read_text())
    assert jobs["32"] == {
        "JobID": "32",
        "State": "FAILED",
        "ExitCode": "1:0",
        "Start": "2026-11-22T23:46:50",
        "End": "2026-11-22T23:46:50",
        "Elapsed": "00:00:00",
        "NodeList": "vm",
        "JobName": "ondemand-boom-boom1",
    }
    assert jobs["17"]["State"] == "CANCELLED" and jobs["17"]["JobName"] == "ondemand-jupyter-lab1"
    assert parse_sacct("6|CANCELLED by 1003|0:0|||00:00:00|(null)|a|b\n")["6"]["State"] == (
        "CANCELLED"
    )
    assert parse_sacct("6|CANCELLED by 1003|0:0|||00:00:00|(null)|a|b\n")["6"]["JobName"] == "a|b"
    assert parse_sacct("Slurm accounting storage is disabled\n") == {}


@pytest.mark.parametrize(
    "state, code, words",
    [
        ("FAILED", "3:0", "failed, exit code 3"),
        ("FAILED", "0:53", "failed, signal 53"),
        ("TIMEOUT", "0:15", "ended: it ran out of time"),
        ("CANCELLED", "0:15", "cancelled"),
        ("COMPLETED", "0:0", "ended"),
        ("OUT_OF_MEMORY", "0:125", "ended: it ran out of memory, signal 125"),
        ("", "", "ended"),
    ],
)
def test_job_ending_in_words(state, code, words):
    assert job_ending(state, code) == words


def test_scontrol_and_sacct_argv_take_only_checked_values():
    slurm = SlurmCommands(bin_dir="/opt/slurm/bin", cluster="c1")
    assert slurm.scontrol_job("42") == [
        "/opt/slurm/bin/scontrol", "-M", "c1", "show", "job", "-o", "42"
    ]  # fmt: skip
    assert slurm.sacct_jobs("alice")[-6:] == [
        "-u", "alice", "-S", "now-7days", "-o", ",".join(SACCT_FIELDS)
    ][-6:]  # fmt: skip
    for bad in ("42 --all", "-1", ""):
        with pytest.raises(ValueError):
            slurm.scontrol_job(bad)
    with pytest.raises(ValueError):
        slurm.sacct_jobs("alice", since="now; id")
