"""What /metrics shows adds up every process of a deployment: requests POSTed to a gunicorn
with two workers and carried out by a prefork worker move the scraped counters by exactly
the number of requests, submitted in the web processes and succeeded in the worker's pool.

prod's queue, which no session worker consumes, so that every job is this test's worker's;
the web and worker processes write to a metrics directory of the test's own.
"""

from __future__ import annotations

import sys
import time

import pytest

from provisioning.models import RequestStatus, ResourceRequest
from provisioning.services import request_approve
from tests.fixtures.ports import free_loopback_port
from tests.fixtures.provisioning import unique_name
from tests.fixtures.web import make_user, start_web
from tests.metrics.conftest import TOKEN, scraped

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

REQUESTS = 4
PROD_BUCKETS = {"environment": "prod", "resource_type": "s3_bucket", "action": "create"}


def wait_until(check, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_metrics_of_web_and_worker_processes_add_up_to_exactly_the_requests_made(
        collected_static, start_worker, tmp_path):
    metrics_dir = tmp_path / "metrics"
    shared = {"KRP_METRICS_DIR": str(metrics_dir), "KRP_TASK_MODE": "broker"}
    worker = start_worker("prod", name="metrics-prod", env=shared, concurrency=2)
    port = free_loopback_port()
    web = start_web(
        [sys.executable, "-m", "gunicorn", "krp_project.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2"],
        log=tmp_path / "gunicorn.log", static_root=collected_static,
        url=f"http://127.0.0.1:{port}", env=shared)
    try:
        worker.wait_for("ready.")
        requester = make_user("mira", "mira-password", team="platform")
        operator = make_user("omar", "omar-password", team="platform",
                             permissions=["provisioning.approve_resourcerequest"])
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        before = web.get("/metrics", headers=bearer)
        assert before.status == 200, before.text

        ids = [web.submit(requester, **PROD_BUCKETS, name=unique_name("scraped"))["id"]
               for _ in range(REQUESTS)]
        # prod waits for approval: the worker plans each, then an operator approves it.
        wait_until(lambda: ResourceRequest.objects.filter(pk__in=ids, plan__isnull=False)
                   .count() == REQUESTS, "the worker to plan every request")
        for request_id in ids:
            request_approve(request_id=request_id, user=operator)
        wait_until(lambda: ResourceRequest.objects.filter(
            pk__in=ids, status__in=[RequestStatus.SUCCEEDED, RequestStatus.FAILED]).count()
            == REQUESTS, "every request to finish")
        assert set(ResourceRequest.objects.filter(pk__in=ids)
                   .values_list("status", flat=True)) == {RequestStatus.SUCCEEDED}

        # Counted after each commit: the last may trail the row by a moment.
        after = wait_until(lambda: (lambda answer: answer if scraped(
            answer.text, "krp_requests_total", **PROD_BUCKETS, status="succeeded")
            - scraped(before.text, "krp_requests_total", **PROD_BUCKETS, status="succeeded")
            >= REQUESTS else None)(web.get("/metrics", headers=bearer)),
            "the worker's counts to show in /metrics")
    finally:
        web.process.stop()

    def moved(name: str, **labels: str) -> float:
        return scraped(after.text, name, **labels) - scraped(before.text, name, **labels)

    assert moved("krp_requests_submitted_total", **PROD_BUCKETS) == REQUESTS  # web
    assert moved("krp_requests_total", **PROD_BUCKETS, status="succeeded") == REQUESTS
    assert moved("krp_requests_total", **PROD_BUCKETS, status="failed") == 0
    assert moved("krp_request_attempts_total", **PROD_BUCKETS) == REQUESTS
    assert moved("krp_request_duration_seconds_count", **PROD_BUCKETS,
                 status="succeeded") == REQUESTS
    assert moved("krp_aws_calls_total", environment="prod", service="s3") >= REQUESTS
    # Every file is of a process started with the test's directory: two gunicorn workers
    # at least, the worker's main process and its pool children.
    assert len({path.name.split("_")[-1] for path in metrics_dir.glob("counter_*.db")}) >= 4
