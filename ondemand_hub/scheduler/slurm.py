"""Slurm: argv-only command wrappers and pure parsers of their output.

Output formats are fixed ``-o`` strings with ``|`` separators (measured: 3 ms for 211 jobs,
against 19 ms for ``--json``, which in Slurm 22.05 also ignores every filter and exits 0 when the
controller is down). Fields that may contain ``|`` (the job name) come last. Parsers are tested
against real output captured from Debian's Slurm (tests/unit/data/slurm/).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .status import JobStatus, SchedulerUnavailable

#: squeue fields, in order; the job name (%j) last, so a '|' in it cannot shift the others.
#: %Q (priority) orders the queue: see queue_position().
SQUEUE_FORMAT = "%i|%T|%r|%u|%a|%P|%D|%C|%m|%l|%M|%L|%V|%S|%e|%N|%B|%Q|%j"
#: ``squeue --start`` fields: id, state, expected start, reason, scheduled nodes, name (last).
SQUEUE_START_FORMAT = "%i|%T|%S|%r|%Y|%j"
SINFO_PARTITIONS_FORMAT = "%R|%P|%a|%l|%L|%D|%T|%c|%m|%C|%G|%N"
#: ``sinfo -N -O`` fields (one line per node and partition): node, partition ("*" marks the
#: default), long state, CPUs allocated/idle/other/total, GRES, GRES in use. ``-O`` because
#: ``-o`` has no "GRES in use"; an empty width prints each field unpadded.
SINFO_NODES_OPTIONS = "NodeHost:|,Partition:|,StateLong:|,CPUsState:|,Gres:|,GresUsed:"
#: ``squeue`` fields for counting jobs per partition: partition(s), state.
SQUEUE_COUNTS_FORMAT = "%P|%T"

#: Pending reasons in plain words (Slurm's codes: squeue(1) "JOB REASON CODES").
REASONS = {
    "Resources": "waiting for CPUs, memory or GPUs to free up",
    "Priority": "other jobs are ahead of it in the queue",
    "Dependency": "waiting for another job to finish",
    "DependencyNeverSatisfied": "it depends on a job that failed; it will never start",
    "BeginTime": "waiting for the start time it was given",
    "JobHeldUser": "held by you",
    "JobHeldAdmin": "held by an administrator",
    "ReqNodeNotAvail": "the nodes it needs are unavailable (maintenance?)",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "PartitionTimeLimit": "it asks for more time than the partition allows",
    "PartitionNodeLimit": "it asks for more nodes than the partition allows",
    "QOSMaxJobsPerUserLimit": "you have as many jobs running as your QOS allows",
    "QOSMaxCpuPerUserLimit": "you use as many CPUs as your QOS allows",
    "AssocMaxJobsLimit": "your account has as many jobs running as it may",
    "AssocGrpCpuLimit": "your account's group uses as many CPUs as it may",
    "Reservation": "waiting for its reservation to start",
    "Licenses": "waiting for a license",
    "launch failed requeued held": "its launch failed; it is held for an administrator",
    "None": "",
}


def plain_reason(reason: str) -> str:
    """Slurm's pending reason in words a researcher understands; unknown codes pass through."""
    reason = reason.strip().strip("()")
    if reason in REASONS:
        return REASONS[reason]
    if reason.startswith("Nodes required for job are DOWN"):
        return "the nodes it needs are down, drained or kept for other partitions"
    return reason


def _none(value: str) -> str:
    return "" if value in ("(null)", "n/a", "N/A", "None", "Unknown") else value


_SQUEUE_FIELDS = SQUEUE_FORMAT.count("|") + 1


def parse_squeue(text: str) -> dict[str, JobStatus]:
    """Jobs from ``squeue -h -t all -o SQUEUE_FORMAT``, keyed by job id."""
    jobs = {}
    for line in text.splitlines():
        fields = line.split("|", _SQUEUE_FIELDS - 1)
        if len(fields) != _SQUEUE_FIELDS:
            continue  # a warning line; never a job
        job_id, state, reason, user = fields[0], fields[1], fields[2], fields[3]
        jobs[job_id] = JobStatus(
            job_id=job_id,
            state=state,
            reason=_none(reason),
            user=user,
            partition=fields[5],
            time_left=_none(fields[11]),
            start_time=_none(fields[13]),
            node=_none(fields[15]),
            batch_host=_none(fields[16]),
            priority=int(fields[17]) if fields[17].isdigit() else 0,
            name=fields[18],
        )
    return jobs


#: Names of SQUEUE_FORMAT's fields, in order (parse_squeue_fields).
SQUEUE_FIELD_NAMES = (
    "id",
    "state",
    "reason",
    "user",
    "account",
    "partition",
    "nodes",
    "cpus",
    "memory",
    "time_limit",
    "elapsed",
    "time_left",
    "submitted",
    "start",
    "end",
    "node_list",
    "batch_host",
    "priority",
    "name",
)


def parse_squeue_fields(text: str) -> dict[str, dict[str, str]]:
    """Every field of ``squeue -o SQUEUE_FORMAT`` by SQUEUE_FIELD_NAMES, keyed by job id, for
    pages that show more than :class:`JobStatus` holds (nodes, elapsed, limit, account);
    Slurm's placeholders (``(null)``, ``N/A``, ...) become ""."""
    jobs = {}
    for line in text.splitlines():
        fields = line.split("|", _SQUEUE_FIELDS - 1)
        if len(fields) != _SQUEUE_FIELDS:
            continue
        row = {k: _none(v) for k, v in zip(SQUEUE_FIELD_NAMES, fields, strict=True)}
        row["name"] = fields[-1]  # a job may be called "None"
        jobs[fields[0]] = row
    return jobs


def parse_squeue_start(text: str) -> dict[str, str]:
    """Expected starts from ``squeue --start -h -o SQUEUE_START_FORMAT``: job id → Slurm's local
    time (``2026-11-23T00:55:56``), or "" when Slurm has no estimate yet (``N/A``: held jobs,
    and jobs the backfill scheduler has not looked at yet)."""
    starts = {}
    for line in text.splitlines():
        fields = line.split("|", 5)
        if len(fields) == 6 and fields[0]:
            starts[fields[0]] = _none(fields[2])
    return starts


#: Pending reasons of jobs that cannot start wherever they stand in the queue (held, waiting for
#: a time or for another job, or asking for more than their partition allows, which
#: ``EnforcePartLimits=NO`` lets them do): they have no place in it and hold nobody up.
NOT_WAITING_IN_LINE = frozenset(
    {
        "JobHeldUser",
        "JobHeldAdmin",
        "BeginTime",
        "Dependency",
        "DependencyNeverSatisfied",
        "PartitionTimeLimit",
        "PartitionNodeLimit",
    }
)


def _in_line(job: JobStatus) -> bool:
    # priority 0 is how Slurm holds a job, whatever the reason text says
    return job.state == "PENDING" and job.priority > 0 and job.reason not in NOT_WAITING_IN_LINE


def _queue_key(job: JobStatus) -> tuple[int, int, str]:
    digits = re.match(r"[0-9]*", job.job_id).group(0)  # type: ignore[union-attr]
    return (-job.priority, int(digits or 0), job.job_id)


def queue_position(jobs: Mapping[str, JobStatus], job_id: str) -> int | None:
    """Where a pending job stands in its partition: 1 = next. None when it is not pending or
    cannot start whatever its place (held, waiting for its begin time or a dependency).

    Slurm's scheduler considers pending jobs by decreasing priority, then by job id (the same
    order as ``squeue``'s default sort ``P,t,-p``); this counts the jobs ahead of ``job_id``
    in its partition (a job submitted to several: its best place among them). Only jobs
    ``squeue`` shows count: with ``PrivateData=jobs`` a user sees, and is placed among, their own
    jobs only. Backfill may still start a short job earlier than its place says.
    """
    job = jobs.get(job_id)
    if job is None or not _in_line(job):
        return None
    key = _queue_key(job)
    ahead = [other for other in jobs.values() if _in_line(other) and _queue_key(other) < key]
    return 1 + min(
        sum(1 for other in ahead if partition in other.partition.split(","))
        for partition in job.partition.split(",")
    )


def parse_duration(text: str) -> int | None:
    """Seconds of a Slurm duration (``[days-][hours:]minutes:seconds``, as ``%L`` and ``%l``
    print them); None for ``UNLIMITED``, ``NOT_SET``, ``INVALID`` and anything else."""
    match = re.fullmatch(r"(?:([0-9]+)-)?(?:([0-9]+):)?([0-9]+):([0-9]+)", text.strip())
    if not match:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if match.group(1) and not match.group(2):
        return None  # "1-02:03" is not a form Slurm prints for these fields
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_time_left(text: str) -> str:
    """A job's time left (squeue ``%L``) in words: "2 days 3 h", "1 h 05 min", "29 min",
    "under a minute", "no time limit"; "" when squeue printed nothing usable."""
    if text.strip() == "UNLIMITED":
        return "no time limit"
    seconds = parse_duration(text)
    if seconds is None:
        return ""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} day{'s' if days > 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return "under a minute"


#: Job states (squeue's long names) in plain words.
STATES = {
    "PENDING": "queued",
    "CONFIGURING": "starting (its nodes are being set up)",
    "RUNNING": "running",
    "COMPLETING": "ending",
    "STAGE_OUT": "ending",
    "SUSPENDED": "suspended",
    "REQUEUED": "requeued",
    "REQUEUE_HOLD": "requeued and held",
    "RESIZING": "resizing",
    "COMPLETED": "ended",
    "CANCELLED": "cancelled",
    "FAILED": "failed",
    "TIMEOUT": "ended: it ran out of time",
    "OUT_OF_MEMORY": "ended: it ran out of memory",
    "NODE_FAIL": "ended: its node failed",
    "BOOT_FAIL": "ended: its node failed to boot",
    "DEADLINE": "ended: it missed its deadline",
    "PREEMPTED": "preempted",
    "REVOKED": "revoked",
    "SPECIAL_EXIT": "held after a special exit",
}


def plain_state(state: str) -> str:
    """squeue's long state name in plain words; unknown states pass through in lower case."""
    return STATES.get(state, state.lower().replace("_", " "))


#: What ``bc_account`` accepts by default (docs/apps.md); other lines of sacctmgr are not accounts.
ACCOUNT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_accounts(text: str) -> list[str]:
    """Accounts from ``sacctmgr -nP show assoc user=<u> format=account`` (one per association,
    so repeated for each partition or cluster): unique and sorted."""
    lines = (line.strip() for line in text.splitlines())
    return sorted({line for line in lines if ACCOUNT_RE.fullmatch(line)})


#: One ``Key=value`` of ``scontrol show job -o``: a value runs until the next `` Key=`` (values
#: may hold spaces, e.g. ``Reason=... Comment=...``; keys never do).
_SCONTROL_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9_:/]*)=(.*?)(?= [A-Za-z][A-Za-z0-9_:/]*=|$)")


def parse_scontrol_job(text: str) -> dict[str, str]:
    """The fields of ``scontrol show job -o <id>`` (one line), e.g. ``JobState``, ``Reason``,
    ``ExitCode``; {} when it printed no job (``Invalid job id specified`` goes to stderr)."""
    line = next((ln for ln in text.splitlines() if ln.startswith("JobId=")), "")
    return {key: value.strip() for key, value in _SCONTROL_FIELD.findall(line)}


#: sacct fields the portal reads, in this order (``-P``: ``|``-separated; the job name last).
SACCT_FIELDS = ("JobID", "State", "ExitCode", "Start", "End", "Elapsed", "NodeList", "JobName")


def parse_sacct(text: str) -> dict[str, dict[str, str]]:
    """Finished jobs from ``sacct -n -P -X -o <SACCT_FIELDS>``, keyed by job id. The state is
    sacct's first word (``CANCELLED by 1003`` → ``CANCELLED``)."""
    jobs = {}
    for line in text.splitlines():
        fields = line.split("|", len(SACCT_FIELDS) - 1)
        if len(fields) != len(SACCT_FIELDS) or not fields[0].isdigit():
            continue
        job = dict(zip(SACCT_FIELDS, fields, strict=True))
        job["State"] = job["State"].split()[0] if job["State"] else ""
        jobs[job["JobID"]] = {k: _none(v) for k, v in job.items()}
    return jobs


def job_ending(state: str, exit_code: str = "") -> str:
    """How a job ended, for a sentence: ``FAILED`` + ``3:0`` → "failed, exit code 3";
    ``TIMEOUT`` → "ended: it ran out of time"; a signal (``0:9``) is named when there is no
    exit code and the state does not already say why (cancelled, out of time)."""
    words = plain_state(state) if state else "ended"
    code, _, signal = exit_code.partition(":")
    if code.isdigit() and int(code):
        words += f", exit code {int(code)}"
    elif signal.isdigit() and int(signal) and state not in ("CANCELLED", "TIMEOUT"):
        words += f", signal {int(signal)}"
    return words


@dataclass(frozen=True)
class Partition:
    """A partition as the form offers it."""

    name: str
    default: bool
    available: bool
    max_time: str
    nodes: int
    cpus_idle: int
    cpus_total: int
    gres: str


def parse_partitions(text: str) -> list[Partition]:
    """Partitions from ``sinfo -h -o SINFO_PARTITIONS_FORMAT`` (one line per partition and
    node state; lines of the same partition are merged)."""
    merged: dict[str, Partition] = {}
    for line in text.splitlines():
        f = line.split("|")
        if len(f) != 12:
            continue
        alloc, idle, _other, total = (int(x) for x in f[9].split("/"))
        part = merged.get(f[0])
        if part is not None:
            idle, total = part.cpus_idle + idle, part.cpus_total + total
        merged[f[0]] = Partition(
            name=f[0],
            default=f[1].endswith("*"),
            available=f[2] == "up",
            max_time=f[3],
            nodes=int(f[5]) + (part.nodes if part else 0),
            cpus_idle=idle,
            cpus_total=total,
            gres=_none(f[10]),
        )
    return list(merged.values())


#: Node states (sinfo's long names, flags stripped) in which a node takes no jobs.
NODE_DOWN_STATES = frozenset(
    {"down", "drained", "fail", "failing", "unknown", "future", "powered_down", "power_down"}
)
_GPU_GRES = re.compile(r"(?:^|,)gpu(?::[^:,(]+)?:([0-9]+)")


def count_gpus(gres: str) -> int:
    """GPUs in a GRES string (``gpu:2``, ``gpu:a100:4(S:0-1),mps:100``; ``(null)`` = 0)."""
    return sum(int(n) for n in _GPU_GRES.findall(gres))


def node_is_down(state: str) -> bool:
    """Whether a node in ``state`` (``idle``, ``down*``, ``drained``, ``mixed~``...) takes no
    jobs: a down state, or ``*`` (not responding)."""
    base = state.rstrip("*~#!%$@^-+").lower()
    return "*" in state or base in NODE_DOWN_STATES


@dataclass(frozen=True)
class NodeState:
    """One node as one partition sees it (``sinfo -N -O SINFO_NODES_OPTIONS``)."""

    name: str
    partition: str
    default: bool
    state: str
    cpus_alloc: int
    cpus_idle: int
    cpus_other: int
    cpus_total: int
    gpus_total: int
    gpus_used: int

    @property
    def down(self) -> bool:
        return node_is_down(self.state)


def parse_nodes(text: str) -> list[NodeState]:
    """Nodes from ``sinfo -h -N -O SINFO_NODES_OPTIONS``; lines that do not fit (``-M``'s
    ``CLUSTER:`` header) are skipped."""
    nodes = []
    for line in text.splitlines():
        f = [x.strip() for x in line.split("|")]
        cpus = f[3].split("/") if len(f) == 6 else []
        if len(cpus) != 4 or not all(x.isdigit() for x in cpus):
            continue
        alloc, idle, other, total = (int(x) for x in cpus)
        nodes.append(
            NodeState(
                name=f[0],
                partition=f[1].rstrip("*"),
                default=f[1].endswith("*"),
                state=f[2],
                cpus_alloc=alloc,
                cpus_idle=idle,
                cpus_other=other,
                cpus_total=total,
                gpus_total=count_gpus(f[4]),
                gpus_used=count_gpus(f[5]),
            )
        )
    return nodes


def count_jobs(text: str) -> dict[str, dict[str, int]]:
    """``{partition: {"running": n, "pending": n}}`` from ``squeue -h -t PD,R -o
    SQUEUE_COUNTS_FORMAT``; a job pending in several partitions counts in each."""
    counts: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        f = line.strip().split("|")
        if len(f) != 2 or f[1] not in ("RUNNING", "PENDING"):
            continue
        key = "running" if f[1] == "RUNNING" else "pending"
        for name in f[0].split(","):
            counts.setdefault(name, {"running": 0, "pending": 0})[key] += 1
    return counts


@dataclass(frozen=True)
class PartitionLoad:
    """What the status page shows for one partition."""

    name: str
    default: bool
    nodes_up: int
    nodes_down: int
    cpus_used: int
    cpus_free: int  # idle CPUs of nodes that take jobs
    cpus_total: int
    gpus_used: int
    gpus_total: int
    jobs_running: int
    jobs_pending: int


def partition_loads(
    nodes: Sequence[NodeState], jobs: Mapping[str, Mapping[str, int]]
) -> list[PartitionLoad]:
    """One :class:`PartitionLoad` per partition, in sinfo's order."""
    by_partition: dict[str, list[NodeState]] = {}
    for node in nodes:
        by_partition.setdefault(node.partition, []).append(node)
    loads = []
    for name, members in by_partition.items():
        up = [n for n in members if not n.down]
        counts = jobs.get(name, {})
        loads.append(
            PartitionLoad(
                name=name,
                default=any(n.default for n in members),
                nodes_up=len(up),
                nodes_down=len(members) - len(up),
                cpus_used=sum(n.cpus_alloc for n in members),
                cpus_free=sum(n.cpus_idle for n in up),
                cpus_total=sum(n.cpus_total for n in members),
                gpus_used=sum(n.gpus_used for n in members),
                gpus_total=sum(n.gpus_total for n in members),
                jobs_running=counts.get("running", 0),
                jobs_pending=counts.get("pending", 0),
            )
        )
    return loads


def parse_sbatch(stdout: str) -> str:
    """The job id from ``sbatch --parsable`` ("<id>" or "<id>;<cluster>" on the last line)."""
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        raise SchedulerUnavailable("sbatch printed no job id")
    job_id = lines[-1].split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise SchedulerUnavailable(f"sbatch printed no job id: {lines[-1]!r}")
    return job_id


@dataclass(frozen=True)
class SlurmCommands:
    """Where Slurm's commands are and which cluster they talk to (from clusters.d)."""

    bin_dir: str | None = None
    conf: str | None = None
    cluster: str | None = None

    def argv(self, command: str, *args: str) -> list[str]:
        exe = os.path.join(self.bin_dir, command) if self.bin_dir else command
        cluster = ["-M", self.cluster] if self.cluster else []
        return [exe, *cluster, *args]

    def env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        if self.conf:
            env["SLURM_CONF"] = self.conf
        return env

    def squeue_all(self) -> list[str]:
        return self.argv("squeue", "-h", "-t", "all", "-o", SQUEUE_FORMAT)

    def squeue_user(self, user: str) -> list[str]:
        """Every job of ``user`` that slurmctld still holds (finished ones for MinJobAge)."""
        return self.argv("squeue", "-h", "-t", "all", "-u", _user(user), "-o", SQUEUE_FORMAT)

    def squeue_job(self, job_id: str) -> list[str]:
        """One job, whoever's it is, while slurmctld holds it (``SQUEUE_FORMAT``). squeue
        exits 1 with "Invalid job id specified" for a job it has already forgotten."""
        if not job_id.isdigit():
            raise ValueError(f"not a Slurm job id: {job_id!r}")
        return self.argv("squeue", "-h", "-t", "all", "-j", job_id, "-o", SQUEUE_FORMAT)

    def squeue_pending(self, partitions: Sequence[str]) -> list[str]:
        """Every user's pending jobs in ``partitions``: what queue_position() needs."""
        for name in partitions:
            if not _PARTITION.fullmatch(name):
                raise ValueError(f"not a partition name: {name!r}")
        if not partitions:
            raise ValueError("no partition given")
        return self.argv(
            "squeue", "-h", "-t", "PD", "-p", ",".join(partitions), "-o", SQUEUE_FORMAT
        )

    def squeue_start(self, user: str) -> list[str]:
        """Expected starts of ``user``'s pending jobs (see parse_squeue_start)."""
        return self.argv("squeue", "--start", "-h", "-u", _user(user), "-o", SQUEUE_START_FORMAT)

    def sacctmgr_accounts(self, user: str) -> list[str]:
        """``user``'s accounts (see parse_accounts). sacctmgr has no ``-M``: the cluster goes in
        the query."""
        exe = os.path.join(self.bin_dir, "sacctmgr") if self.bin_dir else "sacctmgr"
        cluster = [f"cluster={self.cluster}"] if self.cluster else []
        return [exe, "-nP", "show", "assoc", f"user={_user(user)}", *cluster, "format=account"]

    def scontrol_job(self, job_id: str) -> list[str]:
        """``scontrol show job -o <id>`` (see parse_scontrol_job): while slurmctld remembers the
        job (MinJobAge, 300 s by default, after it ends)."""
        if not job_id.isdigit():
            raise ValueError(f"not a Slurm job id: {job_id!r}")
        return self.argv("scontrol", "show", "job", "-o", job_id)

    def sacct_jobs(self, user: str, since: str = "now-7days") -> list[str]:
        """``user``'s jobs since ``since`` from Slurm's accounting (see parse_sacct); fails
        where there is no slurmdbd ("Slurm accounting storage is disabled")."""
        if not re.fullmatch(r"now-[0-9]{1,3}days|[0-9]{4}-[0-9]{2}-[0-9]{2}", since):
            raise ValueError(f"not a sacct start time: {since!r}")
        return self.argv(
            "sacct", "-n", "-P", "-X", "-u", _user(user), "-S", since, "-o", ",".join(SACCT_FIELDS)
        )

    def sinfo_partitions(self) -> list[str]:
        return self.argv("sinfo", "-h", "-o", SINFO_PARTITIONS_FORMAT)

    def sinfo_nodes(self) -> list[str]:
        """Every node per partition with its state, CPUs and GPUs (see parse_nodes)."""
        return self.argv("sinfo", "-h", "-N", "-O", SINFO_NODES_OPTIONS)

    def squeue_counts(self) -> list[str]:
        """Every user's running and pending jobs, for counting per partition (count_jobs)."""
        return self.argv("squeue", "-h", "-t", "PD,R", "-o", SQUEUE_COUNTS_FORMAT)

    def sbatch_file(
        self,
        script: str,
        chdir: str,
        partition: str = "",
        account: str = "",
        time_limit: str = "",
        job_name: str = "",
    ) -> list[str]:
        """``sbatch --parsable`` of a script file (its path an argument, never stdin) run in
        ``chdir``; empty options are left to the script's ``#SBATCH`` lines and Slurm's
        defaults. Refuses values that could be read as other options."""
        for path in (script, chdir):
            if not os.path.isabs(path) or "\n" in path or "\0" in path:
                raise ValueError(f"not an absolute path: {path!r}")
        options = ["--parsable", f"--chdir={chdir}"]
        if partition:
            if not _PARTITION.fullmatch(partition):
                raise ValueError(f"not a partition name: {partition!r}")
            options.append(f"--partition={partition}")
        if account:
            if not ACCOUNT_RE.fullmatch(account):
                raise ValueError(f"not an account name: {account!r}")
            options.append(f"--account={account}")
        if time_limit:
            if not TIME_LIMIT_RE.fullmatch(time_limit):
                raise ValueError(f"not a time limit: {time_limit!r}")
            options.append(f"--time={time_limit}")
        if job_name:
            if not JOB_NAME_RE.fullmatch(job_name):
                raise ValueError(f"not a job name: {job_name!r}")
            options.append(f"--job-name={job_name}")
        return self.argv("sbatch", *options, script)

    def scancel(self, job_id: str) -> list[str]:
        if not job_id.isdigit():
            raise ValueError(f"not a Slurm job id: {job_id!r}")
        return self.argv("scancel", job_id)


#: Time limits sbatch accepts that the portal offers: minutes, ``[D-]HH:MM:SS`` or ``D-HH``.
TIME_LIMIT_RE = re.compile(
    r"[0-9]{1,6}|(?:[0-9]{1,3}-)?[0-9]{1,3}:[0-5][0-9]:[0-5][0-9]|[0-9]{1,3}-[0-9]{1,2}"
)
#: Job names the portal passes to ``--job-name``: printable, no ``|`` (squeue's separator).
JOB_NAME_RE = re.compile(r"[A-Za-z0-9_.+][A-Za-z0-9 _.,:+@()-]{0,99}")
_PARTITION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def _user(name: str) -> str:
    if not _USER_NAME.fullmatch(name):
        raise ValueError(f"not a user name: {name!r}")
    return name


async def run(
    argv: Sequence[str], env: dict[str, str], timeout: float = 30.0, stdin: bytes | None = None
) -> str:
    """Run one scheduler command (argv, never a shell); its stdout, or SchedulerUnavailable with
    its last stderr line. Slurm needs ~9 s to give up on a dead controller: keep ``timeout``
    above that."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise SchedulerUnavailable(
            f"{os.path.basename(argv[0])} timed out after {timeout} s"
        ) from None
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise SchedulerUnavailable(lines[-1] if lines else f"{argv[0]} exited {proc.returncode}")
    return out.decode(errors="replace")
