"""Fencing, with real workers: a worker child paused past its lease (SIGSTOP) wakes after
another worker took its request over and finished a later update, and writes nothing."""

import os
import re
import signal
import time

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from provisioning.models import RequestEvent, RequestStatus
from provisioning.services import request_approve, sweep
from tests.broker.test_provisioning import wait_for
from tests.fixtures.processes import parent_pid
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def carry_out(requester, operator, name, **fields):
    """Submit a prod request and approve it (prod, whose queue only this test's workers
    serve); the recorded request."""
    request = submit(requester, name, environment="prod", **fields)
    request_approve(request_id=request.pk, user=operator)
    return request


def bucket_state(cloud, bucket):
    s3 = cloud.client("prod", "s3")
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    return tags.get("stage"), s3.get_bucket_versioning(Bucket=bucket).get("Status")


def test_a_worker_paused_past_its_lease_wakes_and_does_not_overwrite_a_later_update(
    requester, operator, start_worker, sandbox_faults, cloud
):
    first = start_worker("prod", name="prod-stalls")
    first.wait_for("ready.")
    name = unique_name("fence")
    created = wait_for(carry_out(requester, operator, name, tags={"stage": "created"}),
                       RequestStatus.SUCCEEDED)

    # Every S3 call is slow, so the update is still reading the bucket when it is paused.
    sandbox_faults.set_faults(latency=0.7, services=["s3"])
    stale = carry_out(requester, operator, name, action="update", spec={"versioning": True},
                      tags={"stage": "stale"})
    running = wait_for(stale, RequestStatus.RUNNING, condition=lambda r: bool(r.lease_owner))
    child = int(running.lease_owner.rsplit(":", 1)[1])
    assert parent_pid(child) == first.pid  # the pool child that holds the lease
    # wait_for refreshes the one row object: keep what the stalled run holds.
    stalled_task, stalled_owner = running.task_id, running.lease_owner
    stalled_generation, lease_lapses_at = running.lease_generation, running.lease_expires_at
    os.kill(child, signal.SIGSTOP)
    try:
        sandbox_faults.set_faults(latency=0.0)
        time.sleep(max((lease_lapses_at - timezone.now()).total_seconds(), 0) + 0.5)
        assert str(stale.pk) in sweep().reclaimed
        taken_over_at = timezone.now()

        start_worker("prod", name="prod-takes-over").wait_for("ready.")
        finished = wait_for(stale, RequestStatus.SUCCEEDED, timeout=90)
        assert finished.lease_generation == stalled_generation + 2  # reclaim, start
        later = wait_for(carry_out(requester, operator, name, action="update",
                                   spec={"versioning": False}, tags={"stage": "later"}),
                         RequestStatus.SUCCEEDED, timeout=90)
        assert bucket_state(cloud, created.physical_name) == ("later", "Suspended")
    finally:
        os.kill(child, signal.SIGCONT)

    # The woken run finds it lost the lease and stops: skipped, nothing sent, nothing moved.
    deadline = time.monotonic() + 60
    while not TaskResult.objects.filter(task_id=stalled_task, status="SUCCESS").exists():
        assert time.monotonic() < deadline, first.log()[-4000:]
        time.sleep(0.2)
    # The cloud keeps the later update's state: the woken run's writes were never sent.
    assert bucket_state(cloud, created.physical_name) == ("later", "Suspended")
    outcome = TaskResult.objects.get(task_id=stalled_task).result
    assert '"outcome": "skipped"' in outcome and "lost the lease" in outcome
    # It stopped at its fence (before a Put) or, finding the cloud no longer as the plan it
    # was approved with, at its plan check: either way it says it lost its lease.
    assert re.search(r"lost its lease; (Put|the cloud changed)", first.log())
    after_takeover = RequestEvent.objects.filter(
        request__in=[stale, later], created_at__gte=taken_over_at)
    assert after_takeover.exists()
    stalled_worker = re.compile(rf"{re.escape(stalled_owner)}\b")
    assert not [e.message for e in after_takeover if stalled_worker.search(e.message)]
    finished.refresh_from_db()
    assert (finished.status, finished.error) == (RequestStatus.SUCCEEDED, None)
