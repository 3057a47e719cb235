"""The scheduler helpers of the Jobs pages: every squeue field by name (on real output captured
from Debian's Slurm 22.05, tests/unit/data/slurm/squeue.txt), one job's squeue, and the sbatch
argv of a composer job (a script file, never stdin; values that could be options refused)."""

from pathlib import Path

import pytest

from ondemand_hub.scheduler.slurm import (
    SQUEUE_FIELD_NAMES,
    SQUEUE_FORMAT,
    SlurmCommands,
    parse_squeue_fields,
)

DATA = Path(__file__).parent / "data" / "slurm"


def test_every_squeue_field_has_a_name():
    assert len(SQUEUE_FIELD_NAMES) == SQUEUE_FORMAT.count("|") + 1
    assert SQUEUE_FIELD_NAMES[-1] == "name"


def test_squeue_fields_by_name_from_real_output():
    jobs = parse_squeue_fields((DATA / "squeue.txt").read_text())
    assert jobs["186"] == {
        "id": "186",
        "state": "CANCELLED",
        "reason": "",
        "user": "odt-gina",
        "account": "",
        "partition": "debug",
        "nodes": "1",
        "cpus": "1",
        "memory": "4G",
        "time_limit": "1:00:00",
        "elapsed": "0:03",
        "time_left": "59:57",
        "submitted": "2026-11-23T00:21:04",
        "start": "2026-11-23T00:21:04",
        "end": "2026-11-23T00:21:07",
        "node_list": "vm",
        "batch_host": "vm",
        "priority": "4294901574",
        "name": "ondemand-jupyter-jupyter-1",
    }
    assert jobs["190"]["reason"] == "Resources" and jobs["190"]["node_list"] == ""


def test_a_job_name_with_separators_or_placeholders_stays_whole():
    line = "7|RUNNING|None|al|(null)|debug|1|1|1G|5:00|0:01|4:59|x|x|x|vm|vm|1|a|b|None"
    assert parse_squeue_fields(line + "\nsqueue: warning\n")["7"]["name"] == "a|b|None"
    assert (
        parse_squeue_fields("7|None|N/A|al|(null)|debug|1|1|1G|5:00|0:01|4:59|x|x|x|vm|vm|1|None")[
            "7"
        ]["name"]
        == "None"
    )


def test_squeue_of_one_job():
    assert SlurmCommands(cluster="c1").squeue_job("42") == [
        "squeue", "-M", "c1", "-h", "-t", "all", "-j", "42", "-o", SQUEUE_FORMAT,
    ]  # fmt: skip
    with pytest.raises(ValueError):
        SlurmCommands().squeue_job("42,43")


def test_sbatch_of_a_script_file_in_its_folder():
    argv = SlurmCommands(bin_dir="/opt/slurm/bin").sbatch_file(
        "/home/al/ondemand/jobs/3/job.sh",
        "/home/al/ondemand/jobs/3",
        partition="batch",
        account="chem-lab",
        time_limit="1-02:00:00",
        job_name="Hello world",
    )
    assert argv == [
        "/opt/slurm/bin/sbatch",
        "--parsable",
        "--chdir=/home/al/ondemand/jobs/3",
        "--partition=batch",
        "--account=chem-lab",
        "--time=1-02:00:00",
        "--job-name=Hello world",
        "/home/al/ondemand/jobs/3/job.sh",
    ]
    assert SlurmCommands().sbatch_file("/j/job.sh", "/j") == [
        "sbatch", "--parsable", "--chdir=/j", "/j/job.sh",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "changes",
    [
        {"script": "job.sh"},
        {"chdir": "/j\n--wrap=x"},
        {"partition": "--wrap=id"},
        {"account": "-A x"},
        {"time_limit": "1 hour"},
        {"time_limit": "10:99:00"},
        {"job_name": "-x"},
        {"job_name": "a|b"},
    ],
)
def test_sbatch_refuses_what_is_not_a_validated_value(changes):
    values = {"script": "/j/job.sh", "chdir": "/j", **changes}
    with pytest.raises(ValueError):
        SlurmCommands().sbatch_file(**values)


@pytest.mark.parametrize("limit", ["30", "01:30:00", "2-00:00:00", "1-12"])
def test_sbatch_time_limits_in_slurms_forms(limit):
    assert f"--time={limit}" in SlurmCommands().sbatch_file("/j/a.sh", "/j", time_limit=limit)
