"""The job adapters' contract (ondemand_hub/scheduler/adapter.py): which adapter a cluster or a
saved job gets, and for Slurm and the local cluster each part the spawner relies on (the pure
submission, submit, status from the one shared source, cancel, how a job ended, progress words,
where the server is). Commands run as the user go to a fake of ``ondemand-stage user run``
(the helper is tested in test_stage_user_run.py and, for real, in the integration tests);
Slurm's read-only commands to a fake of ``run_command`` where a controller cannot produce the
case (a timeout on cue, a job in a given state)."""

import os
from pathlib import Path

import pytest

from ondemand_hub.scheduler import adapter as adapters
from ondemand_hub.scheduler import slurm_adapter
from ondemand_hub.scheduler.adapter import (
    AdapterSettings,
    CommandRefused,
    Submission,
    SubmissionRefused,
    SubmitFailed,
    adapter_class,
    adapter_for,
    is_gone,
    lost_words,
)
from ondemand_hub.scheduler.batch import SessionContext
from ondemand_hub.scheduler.local import make_job_id, read_stat
from ondemand_hub.scheduler.local_adapter import LocalAdapter, make_local_submission
from ondemand_hub.scheduler.slurm import SQUEUE_FORMAT, Partition, SlurmCommands
from ondemand_hub.scheduler.slurm_adapter import (
    SlurmAdapter,
    is_definitive,
    make_sbatch_submission,
    queued_message,
)
from ondemand_hub.scheduler.status import JobStatus, SchedulerUnavailable, StatusCache
from ondemand_hub.site.apps import FormError, load_apps
from ondemand_hub.site.clusters import LOCAL_CLUSTER, Cluster

REPO = Path(__file__).resolve().parents[2]
HPC = Cluster(id="hpc", title="HPC", adapter="slurm", bin_dir="/opt/slurm/bin")
CONTEXT = SessionContext(
    app_id="jupyter",
    session_id="lab1",
    session_dir="/home/ann/ondemand/sessions/lab1",
    hub_api_url="http://127.0.0.1:8081/hub/api",
    hub_prefix="/user/ann/lab1/",
)
ENV = {"JUPYTERHUB_API_TOKEN": "secret", "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api"}


@pytest.fixture(autouse=True)
def empty_shared_caches(monkeypatch):
    monkeypatch.setattr(adapters, "STATUS_CACHES", {})
    monkeypatch.setattr(slurm_adapter, "PARTITIONS", {})


class FakeRunAsUser:
    """A fake of ``ondemand-stage user run``: records ``(argv, env, timeout, stdin)`` and
    answers each call with the next of ``answers`` (a string, or an exception to raise)."""

    def __init__(self, *answers):
        self.answers = list(answers) or [""]
        self.calls = []

    async def __call__(self, argv, env, timeout, stdin=None):
        self.calls.append((list(argv), dict(env), timeout, stdin))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def slurm(run=None, **settings) -> SlurmAdapter:
    return SlurmAdapter(HPC, "ann", run or FakeRunAsUser(), AdapterSettings(**settings))


def local_adapter(run=None, **settings) -> LocalAdapter:
    settings.setdefault("python_command", "/venv/bin/python")
    return LocalAdapter(LOCAL_CLUSTER, "ann", run or FakeRunAsUser(), AdapterSettings(**settings))


def shared(cache, cluster_id="hpc"):
    adapters.STATUS_CACHES[f"slurm:{cluster_id}"] = cache


def answering(jobs):
    async def query():
        if isinstance(jobs, Exception):
            raise jobs
        return jobs

    return StatusCache(query, interval=0)


# --- which adapter --------------------------------------------------------------------------


def test_each_cluster_gets_the_adapter_its_file_names():
    assert adapter_class(HPC) is SlurmAdapter
    assert adapter_class(LOCAL_CLUSTER) is LocalAdapter
    made = adapter_for(HPC, "ann", FakeRunAsUser())
    assert type(made) is SlurmAdapter and made.cluster is HPC and made.user == "ann"


def test_a_saved_job_goes_back_to_the_adapter_that_started_it():
    """clusters.d may have changed since: the job id says which backend holds the job."""
    assert adapter_class(HPC, "local:4242:910956") is LocalAdapter
    assert adapter_class(LOCAL_CLUSTER, "4242") is SlurmAdapter
    assert adapter_class(HPC, "4242") is SlurmAdapter


def test_an_unknown_adapter_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="no adapter 'pbs'"):
        adapter_class(Cluster(id="x", title="X", adapter="pbs"))


@pytest.mark.parametrize(
    "state, gone",
    [("PENDING", False), ("RUNNING", False), ("COMPLETING", False), ("FAILED", True)]
    + [("NOTFOUND", True), ("EXITED", True)],
)
def test_is_gone(state, gone):
    assert is_gone(JobStatus("1", state)) is gone


REQUEUED_WORDS = (
    "The job 7 stopped running on odh-node2 and Slurm requeued it "
    "(its node stopped responding, or the job was preempted or requeued)"
)


@pytest.mark.parametrize(
    "status, ran_on, words",
    [
        # ran on a node that stopped responding, now queued again (reason BeginTime)
        (JobStatus("7", "PENDING", reason="BeginTime"), "odh-node2", REQUEUED_WORDS),
        (JobStatus("7", "REQUEUED"), "odh-node2", REQUEUED_WORDS),
        # still running where it ran: not lost
        (JobStatus("7", "RUNNING", node="odh-node2"), "odh-node2", ""),
        (JobStatus("7", "RUNNING", node="odh-node[1-2]", batch_host="odh-node2"), "odh-node2", ""),
        # requeued and already running again elsewhere: lost all the same
        (
            JobStatus("7", "RUNNING", node="odh-node1", batch_host="odh-node1"),
            "odh-node2",
            REQUEUED_WORDS,
        ),
        # queued and never up: a spawn (or one re-adopted after a restart), not lost
        (JobStatus("7", "PENDING", reason="Priority"), "", ""),
        # the scheduler does not answer: unknown, never lost
        (None, "odh-node2", ""),
        # ended: is_gone's business, not a lost session
        (JobStatus("7", "NODE_FAIL"), "odh-node2", ""),
    ],
)
def test_a_job_that_ran_and_is_queued_again_is_lost(status, ran_on, words):
    assert lost_words(status, ran_on) == words


# --- Slurm ----------------------------------------------------------------------------------


def test_the_sbatch_submission_exports_exactly_the_hub_variables():
    values = {"bc_num_hours": 2, "bc_num_slots": 1, "bc_queue": "debug", "bc_account": ""}
    sub = make_sbatch_submission(SlurmCommands(bin_dir="/s"), "#!/bin/bash\n", values, CONTEXT, ENV)
    assert sub == Submission(
        argv=[
            "/s/sbatch",
            "--parsable",
            "--job-name=ondemand-jupyter-lab1",
            "--partition=debug",
            "--time=02:00:00",
            "--cpus-per-task=1",
            "--chdir=/home/ann/ondemand/sessions/lab1",
            "--output=/home/ann/ondemand/sessions/lab1/output.log",
            "--export=JUPYTERHUB_API_TOKEN,JUPYTERHUB_API_URL",
        ],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **ENV},
        stdin=b"#!/bin/bash\n",
        job_name="ondemand-jupyter-lab1",
    )


def test_a_value_sbatch_could_misread_refuses_the_submission():
    with pytest.raises(SubmissionRefused, match="partition"):
        slurm().make_submission("", {"bc_queue": "--uid=0"}, CONTEXT, ENV)


async def test_a_submission_runs_as_the_user_and_gives_the_job_id():
    run = FakeRunAsUser("Submitted\n101;hpc\n")
    sub = Submission(argv=["/s/sbatch", "--parsable"], env={"X": "1"}, stdin=b"s", job_name="j")
    assert await slurm(run, command_timeout=12).submit(sub) == "101"
    assert run.calls == [(["/s/sbatch", "--parsable"], {"X": "1"}, 12, b"s")]


async def test_a_refusal_of_the_helper_fails_the_submission_without_a_lookup(monkeypatch):
    monkeypatch.setattr(slurm_adapter, "run_command", lambda *a, **k: pytest.fail("looked up"))
    run = FakeRunAsUser(CommandRefused("sudo: a password is required"))
    with pytest.raises(SubmitFailed, match="^The job could not be submitted: sudo: a password"):
        await slurm(run).submit(Submission(argv=["sbatch"], job_name="j"))


@pytest.mark.parametrize(
    "error, definitive",
    [
        ("Batch job submission failed: Invalid account or account/partition", True),
        ("Batch job submission failed: Socket timed out on send/recv operation", False),
        ("sbatch timed out after 30.0 s", False),
        ("slurm_load_jobs error: Unable to contact slurm controller", False),
    ],
)
def test_only_a_definitive_refusal_skips_the_lookup(error, definitive):
    assert is_definitive(error) is definitive


async def test_status_comes_from_one_squeue_for_every_session_of_a_cluster(monkeypatch):
    calls = []

    async def fake_squeue(argv, env, timeout=30.0, stdin=None):
        """A fake of squeue: one running job in the real output format's first fields."""
        calls.append(argv)
        return "42|RUNNING|None|ann|acc|debug|1|1|1G|1:00:00|0:05|59:55|x|x|N/A|n1|n1|1|lab\n"

    monkeypatch.setattr(slurm_adapter, "run_command", fake_squeue)
    a, b = slurm(status_interval=60), slurm(status_interval=60)
    assert (await a.status("42")).node == "n1"
    assert (await b.status("42")).is_running
    assert (await b.status("43")).state == "NOTFOUND"
    assert calls == [["/opt/slurm/bin/squeue", "-h", "-t", "all", "-o", SQUEUE_FORMAT]]


async def test_an_unanswered_squeue_is_unknown_never_gone():
    shared(answering(SchedulerUnavailable("Unable to contact slurm controller")))
    adapter = slurm()
    assert await adapter.status("42") is None
    assert await adapter.progress("42", "queued") == {
        "progress": 20,
        "message": "Submitted; the scheduler is not answering",
    }


async def test_cancel_runs_scancel_as_the_user_and_waits_until_the_job_is_gone(monkeypatch):
    monkeypatch.setattr("asyncio.sleep", _no_sleep)
    states = [JobStatus("42", "COMPLETING"), JobStatus("42", "CANCELLED")]

    async def query():
        return {"42": states.pop(0)}

    cache = StatusCache(query, interval=60)
    shared(cache)
    run = FakeRunAsUser()
    await slurm(run, command_timeout=9).cancel("42")
    assert run.calls == [(["/opt/slurm/bin/scancel", "42"], SlurmCommands().env(), 9, None)]
    assert cache.calls == 2 and states == []


async def test_cancel_now_does_not_wait_and_a_failed_scancel_is_only_logged():
    shared(answering(AssertionError("squeue asked")))
    run = FakeRunAsUser(SchedulerUnavailable("scancel: error: Kill job error"))
    await slurm(run).cancel("42", wait=False)
    assert len(run.calls) == 1


async def test_how_a_job_ended_comes_from_scontrol(monkeypatch):
    data = REPO / "tests" / "unit" / "data" / "slurm"
    answers = {"8": (data / "scontrol_job_failed.txt").read_text()}
    calls = []

    async def fake_scontrol(argv, env, timeout=30.0, stdin=None):
        """A fake of scontrol: the captured output of a real failed job, and for any other id
        what scontrol says once it forgot a job."""
        calls.append(argv)
        if argv[-1] in answers:
            return answers[argv[-1]]
        raise SchedulerUnavailable("slurm_load_jobs error: Invalid job id specified")

    monkeypatch.setattr(slurm_adapter, "run_command", fake_scontrol)
    adapter = SlurmAdapter(Cluster(id="hpc", title="HPC", adapter="slurm"), "ann", FakeRunAsUser())
    assert await adapter.how_it_ended("8", JobStatus("8", "FAILED")) == "failed, exit code 3"
    assert calls[0] == ["scontrol", "show", "job", "-o", "8"]
    # scontrol forgot it (or is down): squeue's word, or "gone"
    timeout = JobStatus("9", "TIMEOUT")
    assert await adapter.how_it_ended("9", timeout) == "ended: it ran out of time"
    gone = JobStatus("9", "NOTFOUND")
    assert await adapter.how_it_ended("9", gone) == "it is gone from the queue"
    assert adapter.describe("9") == "The job 9"


async def test_slurm_progress_words():
    shared(answering({"5": JobStatus("5", "RUNNING", node="n1"), "6": JobStatus("6", "FAILED")}))
    adapter = slurm()
    assert await adapter.progress("", "submitting") == adapters.SUBMITTING
    assert await adapter.progress("5", "queued") == {
        "progress": 60,
        "message": "Job 5 is starting on n1",
    }
    assert (await adapter.progress("5", "waiting"))["progress"] == 80
    assert await adapter.progress("6", "queued") == {
        "progress": 90,
        "message": "Job 6 ended (failed)",
    }


def test_queued_message_without_a_place_or_start():
    status = JobStatus("7", "PENDING", reason="JobHeldUser")
    assert queued_message("7", status, None) == "Job 7 is queued in the queue: held by you."


def test_where_a_slurm_session_listens_and_is_reached():
    adapter = slurm()
    assert adapter.listen_ip == "0.0.0.0"
    assert adapter.server_host(JobStatus("1", "RUNNING", node="n1,n2")) == "n1"
    two_nodes = JobStatus("1", "RUNNING", node="n[1-2]", batch_host="n1")
    assert adapter.server_host(two_nodes) == "n1"  # where the script runs, not the node list
    assert adapter.port_file("/home/ann/s", "42") == "/home/ann/s/port.42"


async def test_unknown_fields_are_refused_before_sinfo_is_asked(monkeypatch):
    app = load_apps([str(REPO / "apps")])[0]["jupyter"]
    asked = []

    async def partitions(self):
        asked.append(self.cluster.id)
        return [Partition("debug", True, True, "1:00:00", 1, 2, 2, "")]

    monkeypatch.setattr(SlurmAdapter, "partitions", partitions)
    with pytest.raises(FormError) as info:
        await slurm().validate(app, {"runtime": "9"})
    assert info.value.field == "runtime" and asked == []
    values = await slurm().validate(app, {"bc_num_hours": 1})
    assert values["bc_queue"] == "debug" and asked == ["hpc"]


async def test_partitions_are_asked_once_per_interval_for_every_session(monkeypatch):
    calls = []

    async def fake_sinfo(argv, env, timeout=30.0, stdin=None):
        """A fake of sinfo: one partition, in sinfo's format."""
        calls.append(argv)
        return "debug|debug*|up|1:00:00|1:00:00|1|idle|2|1000|0/2/0/2|(null)|n1\n"

    monkeypatch.setattr(slurm_adapter, "run_command", fake_sinfo)
    first = await slurm(partitions_interval=60).partitions()
    assert [p.name for p in first] == ["debug"]
    assert await slurm(partitions_interval=60).partitions() == first
    assert len(calls) == 1


# --- the local cluster ----------------------------------------------------------------------


def test_the_local_submission_is_the_start_command_with_script_and_variables_on_stdin():
    sub = make_local_submission("/venv/bin/python", "echo hi\n", {}, "/home/ann/s", ENV, 5, 8)
    assert sub.argv == [
        "/venv/bin/python",
        "-I",
        "-m",
        "ondemand_hub.scheduler.local",
        "start",
        "--session-dir=/home/ann/s",
        "--walltime=28800",  # no bc_num_hours: local_default_hours
        "--grace=5",
    ]
    assert sub.env == {} and b'"script": "echo hi\\n"' in sub.stdin
    assert "secret" not in " ".join(sub.argv)
    hours = make_local_submission("/p", "", {"bc_num_hours": 2}, "/home/ann/s", {}, 5, 8)
    assert "--walltime=7200" in hours.argv


def test_a_variable_that_is_not_the_hubs_refuses_the_local_submission():
    with pytest.raises(SubmissionRefused, match="LD_PRELOAD"):
        local_adapter().make_submission("", {}, CONTEXT, {"LD_PRELOAD": "/tmp/x.so"})


@pytest.mark.parametrize(
    "answer, error",
    [
        ("local:4242:910956\n", None),
        ("4242\n", "no job id"),
        (CommandRefused("user 'ann' is locked"), "user 'ann' is locked"),
        (SchedulerUnavailable("python: No module named ondemand_hub"), "No module"),
    ],
)
async def test_a_local_start_gives_its_job_id_or_fails_saying_why(answer, error):
    run = FakeRunAsUser(answer)
    sub = Submission(argv=["/p", "start"], stdin=b"{}")
    if error is None:
        assert await local_adapter(run, command_timeout=7).submit(sub) == "local:4242:910956"
        assert run.calls == [(["/p", "start"], {}, 7, b"{}")]
        return
    with pytest.raises(SubmitFailed, match=error) as info:
        await local_adapter(run).submit(sub)
    assert str(info.value).startswith("The app could not be started on the portal host: ")


async def test_a_local_session_is_cancelled_by_its_stop_command_as_the_user():
    run = FakeRunAsUser("stopped\n")
    await local_adapter(run, local_grace=3, command_timeout=10).cancel("local:42:7")
    assert run.calls == [
        (
            ["/venv/bin/python", "-I", "-m", "ondemand_hub.scheduler.local", "stop"]
            + ["local:42:7", "--grace=3"],
            {},
            13,
            None,
        )
    ]


async def test_local_status_progress_and_words_come_from_proc():
    alive = make_job_id(os.getpid(), read_stat(os.getpid()).start_time)
    gone = make_job_id(os.getpid(), read_stat(os.getpid()).start_time + 1)
    adapter = local_adapter()
    assert (await adapter.status(alive)).is_running
    assert is_gone(await adapter.status(gone))
    assert adapter.server_host(await adapter.status(alive)) == "127.0.0.1"
    assert adapter.listen_ip == "127.0.0.1"
    pid = os.getpid()
    assert await adapter.progress(alive, "queued") == {
        "progress": 60,
        "message": f"Starting the app on the portal host (process {pid})",
    }
    assert await adapter.progress(gone, "queued") == {
        "progress": 90,
        "message": f"The app's processes ({pid}) ended",
    }
    assert await adapter.how_it_ended(gone, await adapter.status(gone)) == ""
    assert adapter.describe(gone) == f"The app's processes ({gone})"


async def test_the_local_form_has_no_partitions():
    app = load_apps([str(REPO / "apps")])[0]["jupyter"]
    values = await local_adapter().validate(app, {"bc_queue": ""})
    assert values["bc_queue"] is None
    with pytest.raises(FormError) as info:
        await local_adapter().validate(app, {"bc_queue": "debug"})
    assert info.value.field == "bc_queue"


_real_sleep = __import__("asyncio").sleep


async def _no_sleep(seconds, *args):
    await _real_sleep(0)
