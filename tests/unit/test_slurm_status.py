"""The status page's Slurm parsers: nodes per partition (``sinfo -N -O``), job counts per
partition (``squeue -t PD,R``) and the load of each partition built from both."""

from __future__ import annotations

from ondemand_hub.scheduler.slurm import (
    NodeState,
    PartitionLoad,
    SlurmCommands,
    count_gpus,
    count_jobs,
    node_is_down,
    parse_nodes,
    partition_loads,
)

# Captured from this machine's Slurm 22.05 (one node vm, partitions debug and batch), then two
# nodes added by hand: a GPU node, and one down and not responding.
SINFO_NODES = """\
CLUSTER: test
vm|debug*|mixed|1/1/0/2|(null)|(null)
vm|batch|mixed|1/1/0/2|(null)|(null)
gpu1|batch|allocated|8/0/0/8|gpu:a100:4(S:0-1)|gpu:a100:2(IDX:0-1)
n2|debug*|down*|0/0/4/4|(null)|(null)
"""

SQUEUE_COUNTS = """\
debug|RUNNING
debug|PENDING
debug,batch|PENDING
batch|RUNNING
batch|COMPLETING
"""


def test_gpus_are_counted_from_gres_strings():
    assert count_gpus("(null)") == 0
    assert count_gpus("gpu:2") == 2
    assert count_gpus("gpu:a100:4(S:0-1)") == 4
    assert count_gpus("gpu:a100:2(IDX:0-1),gpu:v100:1(IDX:2)") == 3
    assert count_gpus("mps:100,gpu:1") == 1
    assert count_gpus("gpu:0(IDX:N/A)") == 0


def test_down_drained_and_unresponsive_nodes_take_no_jobs():
    assert [
        s for s in ("idle", "mixed", "allocated", "draining", "completing") if node_is_down(s)
    ] == []
    assert all(node_is_down(s) for s in ("down", "down*", "drained", "idle*", "fail", "unknown"))


def test_nodes_are_parsed_per_partition_and_the_cluster_header_skipped():
    nodes = parse_nodes(SINFO_NODES)
    assert nodes[0] == NodeState("vm", "debug", True, "mixed", 1, 1, 0, 2, 0, 0)
    assert nodes[2] == NodeState("gpu1", "batch", False, "allocated", 8, 0, 0, 8, 4, 2)
    assert [(n.name, n.partition, n.down) for n in nodes] == [
        ("vm", "debug", False),
        ("vm", "batch", False),
        ("gpu1", "batch", False),
        ("n2", "debug", True),
    ]


def test_running_and_pending_jobs_are_counted_per_partition():
    assert count_jobs(SQUEUE_COUNTS) == {
        "debug": {"running": 1, "pending": 2},
        "batch": {"running": 1, "pending": 1},
    }
    assert count_jobs("") == {}


def test_partition_loads_combine_nodes_and_jobs():
    loads = partition_loads(parse_nodes(SINFO_NODES), count_jobs(SQUEUE_COUNTS))
    assert loads == [
        PartitionLoad("debug", True, 1, 1, 1, 1, 6, 0, 0, 1, 2),
        PartitionLoad("batch", False, 2, 0, 9, 1, 10, 2, 4, 1, 1),
    ]


def test_a_partition_without_jobs_counts_zero():
    (load,) = partition_loads(parse_nodes("vm|debug*|idle|0/2/0/2|(null)|(null)\n"), {})
    assert (load.jobs_running, load.jobs_pending, load.cpus_free) == (0, 0, 2)


def test_the_status_commands_are_argv_lists_for_the_configured_cluster():
    commands = SlurmCommands(bin_dir="/opt/slurm/bin", cluster="owens")
    assert commands.sinfo_nodes() == [
        "/opt/slurm/bin/sinfo",
        "-M",
        "owens",
        "-h",
        "-N",
        "-O",
        "NodeHost:|,Partition:|,StateLong:|,CPUsState:|,Gres:|,GresUsed:",
    ]
    assert commands.squeue_counts() == [
        "/opt/slurm/bin/squeue",
        "-M",
        "owens",
        "-h",
        "-t",
        "PD,R",
        "-o",
        "%P|%T",
    ]
