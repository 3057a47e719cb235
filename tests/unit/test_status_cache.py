"""The shared status cache: one scheduler query per interval for all sessions, and "unknown"
rather than "gone" when the scheduler cannot be asked."""

import asyncio

from ondemand_hub.scheduler.status import JobStatus, SchedulerUnavailable, StatusCache


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_cache(jobs=None, fail=False, delay=0.0):
    async def query():
        await asyncio.sleep(delay)
        if fail:
            raise SchedulerUnavailable("slurm_load_jobs error: Unable to contact slurm controller")
        return dict(jobs or {})

    clock = FakeClock()
    return StatusCache(query, interval=10, clock=clock), clock


async def test_200_sessions_polling_together_cost_one_query():
    jobs = {str(i): JobStatus(str(i), "RUNNING", node="n1") for i in range(200)}
    cache, _ = make_cache(jobs, delay=0.01)
    results = await asyncio.gather(*(cache.status(str(i)) for i in range(200)))
    assert cache.calls == 1
    assert all(r.state == "RUNNING" for r in results)


async def test_the_cache_is_refreshed_after_the_interval():
    cache, clock = make_cache({"1": JobStatus("1", "PENDING", reason="Resources")})
    await cache.status("1")
    clock.now += 5
    await cache.status("1")
    assert cache.calls == 1
    clock.now += 6
    await cache.status("1")
    assert cache.calls == 2


async def test_a_job_the_scheduler_no_longer_lists_is_notfound():
    cache, _ = make_cache({})
    assert (await cache.status("42")).state == "NOTFOUND"


async def test_scheduler_errors_mean_unknown_not_gone():
    cache, _ = make_cache(fail=True)
    assert await cache.status("42") is None
    assert "Unable to contact slurm controller" in cache.error


def test_state_groups():
    assert JobStatus("1", "PENDING").is_pending and not JobStatus("1", "PENDING").is_running
    assert JobStatus("1", "COMPLETING").is_running
    assert not JobStatus("1", "FAILED").is_running and not JobStatus("1", "FAILED").is_pending


async def test_a_starting_session_may_ask_for_a_younger_answer_still_shared():
    cache, clock = make_cache({"1": JobStatus("1", "PENDING")})
    await cache.status("1")
    clock.now += 0.5
    await cache.status("1")  # a plain poll: the 10 s answer is still good
    assert cache.calls == 1
    await asyncio.gather(*(cache.status("1", max_age=0.25) for _ in range(50)))
    assert cache.calls == 2  # one fresh query for every hurried caller together
