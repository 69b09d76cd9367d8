"""One AWS call budget per environment, shared by every worker process through Redis."""

import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterator

import pytest

from containers.settings import KrpSettings
from provisioning.budget import KEY_PREFIX, CallBudget
from provisioning.models import RequestStatus
from provisioning.services import request_approve
from tests.broker.test_provisioning import buckets, wait_for
from tests.fixtures.components import PrivateRedis
from tests.fixtures.ports import free_loopback_port
from tests.fixtures.processes import start_process
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

BUDGET = 3  # calls per second for prod, in both workers' settings
# Calls the budget does not see (each worker child's AssumeRole: botocore's credential
# fetcher builds its own STS client) and the sampling's own jitter.
ALLOWANCE = 3
WINDOW = 4  # seconds


def sample_calls(sandbox, samples, stop):
    while not stop.is_set():
        samples.append((time.monotonic(), sandbox.total_calls()))
        time.sleep(0.1)


@pytest.fixture
def shared_budget_env(broker, tmp_path) -> Iterator[dict[str, str]]:
    """What workers need besides their settings to share one budget: nothing on Redis (the
    broker holds it); on RabbitMQ, a Redis as KRP_CACHE_URL, as a deployment gives them."""
    if broker.kind == "redis":
        yield {}
        return
    cache = PrivateRedis(tmp_path)
    cache.start()
    try:
        yield {"KRP_CACHE_URL": cache.url}
    finally:
        cache.close()


def test_two_workers_together_never_exceed_the_environments_call_budget(
    requester, operator, start_worker, sandbox, cloud, shared_budget_env
):
    environments = json.loads(os.environ["KRP_ENVIRONMENTS"])
    environments["prod"]["api_calls_per_second"] = BUDGET
    budgeted = {"KRP_ENVIRONMENTS": json.dumps(environments), **shared_budget_env}
    workers = [start_worker("prod", name=f"prod-budget-{n}", env=budgeted) for n in (1, 2)]
    for worker in workers:
        worker.wait_for("ready.")
    # A first create of a bucket is 4 calls: 12 of them are a burst the budget must hold back.
    requests = [submit(requester, unique_name("budget"), environment="prod") for _ in range(12)]

    samples, stop = [], threading.Event()
    sampler = threading.Thread(target=sample_calls, args=(sandbox, samples, stop))
    sampler.start()
    try:
        for request in requests:
            request_approve(request_id=request.pk, user=operator)
        done = [wait_for(request, RequestStatus.SUCCEEDED, timeout=120) for request in requests]
    finally:
        stop.set()
        sampler.join()

    # Every request succeeded, in one attempt, and both workers took part.
    assert [request.attempts for request in done] == [1] * len(done)
    assert {request.physical_name for request in done} <= set(buckets(cloud, "prod"))
    runners = {re.search(r"attempt 1 on (\S+)", e.message).group(1)
               for request in done for e in request.events.filter(to_status="running")}
    assert len(runners) == 2
    # Over the burst, and in any stretch of it, the sandbox saw no more calls than the
    # budget allows (a moving window admits BUDGET calls in each started second).
    sent, whole = samples[-1][1] - samples[0][1], samples[-1][0] - samples[0][0]
    assert sent > 40  # the burst was big enough for the budget to matter (4 a bucket)
    assert sent <= BUDGET * (math.floor(whole) + 1) + ALLOWANCE, f"{sent} calls in {whole} s"
    # (A window of a few seconds: two unshared budgets would send twice the rate in it.)
    for i, (start, before) in enumerate(samples):
        for end, after in samples[i + 1:]:
            if end - start >= WINDOW:
                allowed = BUDGET * (math.floor(end - start) + 1) + ALLOWANCE
                assert after - before <= allowed, (
                    f"{after - before} calls in {end - start:.1f} s; budget allows {allowed}")
                break


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, on a free port, that the test may stop."""
    port = free_loopback_port()
    server = start_process(["redis-server", "--port", str(port), "--save", "",
                            "--appendonly", "no", "--dir", str(tmp_path)],
                           tmp_path / "redis.log")
    server.wait_for("Ready to accept connections", timeout=20)
    yield f"redis://127.0.0.1:{port}/0", server
    server.stop()


def budget_settings(url: str, calls_per_second: int) -> KrpSettings:
    environments = json.loads(os.environ["KRP_ENVIRONMENTS"])
    environments["alpha"]["api_calls_per_second"] = calls_per_second
    return KrpSettings.from_environ({**os.environ, "KRP_BROKER_URL": url,
                                     "KRP_ENVIRONMENTS": json.dumps(environments)})


def test_two_processes_budgets_share_one_window_and_ride_out_a_redis_outage(own_redis, caplog):
    import redis

    url, server = own_redis
    settings = budget_settings(url, 2)
    # Two budgets as two processes hold them: they share only the Redis.
    one, other = CallBudget(settings), CallBudget(settings)
    assert (one.status(), one.describe()["alpha"]) == (
        "ok", {"calls_per_second": 2, "kept": f"shared through {url}"})

    started = time.monotonic()
    one.take("alpha")
    one.take("alpha")
    other.take("alpha")  # the window is full: this one waits for the first to age out
    assert time.monotonic() - started >= 0.9
    assert redis.Redis.from_url(url).keys(f"{KEY_PREFIX}*")

    server.stop()
    assert one.status().startswith("down")
    with caplog.at_level(logging.WARNING, logger="provisioning.budget"):
        started = time.monotonic()
        one.take("alpha")  # Redis is gone: the process's own budget serves, no failure
    assert time.monotonic() - started < 5
    assert "shared Redis unavailable" in caplog.text
