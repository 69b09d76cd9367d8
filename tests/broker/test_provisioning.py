"""Requests carried out by real worker processes over the real Redis broker.

Recorded in PostgreSQL, published after commit, run in the right account by the worker of
the environment's queue; recovered by the sweep when a worker dies mid-job.
"""

import json
import os
import signal
import time

import pytest

from containers.settings import KrpSettings
from provisioning.models import RequestStatus, Resource, ResourceRequest
from provisioning.services import request_approve, sweep
from provisioning.tasks import provision_task
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def wait_for(request, *statuses, timeout=60.0, condition=None) -> ResourceRequest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request.refresh_from_db()
        if request.status in statuses and (condition is None or condition(request)):
            return request
        time.sleep(0.2)
    raise AssertionError(
        f"request stayed {request.status} (wanted {statuses}); events: "
        f"{list(request.events.values_list('to_status', 'actor', 'message'))}"
    )


def buckets(cloud, environment):
    return [b["Name"] for b in cloud.client(environment, "s3").list_buckets()["Buckets"]]


def test_bucket_request_is_carried_out_in_alphas_account_by_the_alpha_worker(
    alpha_worker, requester, cloud
):
    request = submit(requester, unique_name("e2e"), spec={"versioning": True})

    done = wait_for(request, RequestStatus.SUCCEEDED)

    assert done.outputs["arn"] == f"arn:aws:s3:::{done.physical_name}"
    assert done.attempts == 1
    assert done.physical_name in buckets(cloud, "alpha")
    assert done.physical_name not in buckets(cloud, "prod")
    assert done.task_result.status == "SUCCESS"
    assert Resource.objects.get(created_by_request=done).status == "active"


def test_a_repeated_message_for_the_same_request_creates_nothing_more(
    alpha_worker, requester, cloud
):
    done = wait_for(submit(requester, unique_name("e2e")), RequestStatus.SUCCEEDED)

    again = provision_task("s3_bucket").apply_async(
        kwargs={"request_id": str(done.pk)}, queue="alpha"
    ).get(timeout=60)

    assert again["outcome"] == "skipped"
    assert buckets(cloud, "alpha").count(done.physical_name) == 1
    assert Resource.objects.filter(name=done.name).count() == 1
    done.refresh_from_db()
    assert (done.status, done.attempts) == (RequestStatus.SUCCEEDED, 1)


def test_permission_or_validation_error_fails_at_once_with_the_aws_error(
    alpha_worker, requester
):
    request = submit(
        requester, unique_name("e2e"), resource_type="iam_role",
        spec={"trusted_service": "lambda.amazonaws.com",
              "managed_policy_arns": ["arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"]},
    )

    failed = wait_for(request, RequestStatus.FAILED)

    assert failed.attempts == 1
    assert failed.error["code"] == "NoSuchEntity"
    assert "NoSuchPolicyAnywhere" in failed.error["message"]


def test_throttled_request_is_retried_with_backoff_and_succeeds(
    alpha_worker, requester, sandbox_faults, cloud
):
    sandbox_faults.set_faults(throttle_rate=1.0, services=["s3"])
    request = submit(requester, unique_name("e2e"))

    wait_for(request, RequestStatus.QUEUED, RequestStatus.RUNNING,
             condition=lambda r: r.error_code in ("SlowDown", "503"))
    sandbox_faults.set_faults(throttle_rate=0.0)
    done = wait_for(request, RequestStatus.SUCCEEDED)

    assert done.attempts >= 2
    messages = list(done.events.values_list("message", flat=True))
    assert any(message.startswith("attempt 1 hit ") and "retrying in" in message
               for message in messages)
    assert buckets(cloud, "alpha").count(done.physical_name) == 1


def test_job_from_a_web_process_with_other_settings_fails_the_request_untouched(
    alpha_worker, requester, container, cloud
):
    environments = json.loads(os.environ["KRP_ENVIRONMENTS"])
    environments["alpha"]["region"] = "eu-west-1"
    container.settings.override(
        KrpSettings.from_environ({**os.environ, "KRP_ENVIRONMENTS": json.dumps(environments)})
    )
    request = submit(requester, unique_name("e2e"))

    failed = wait_for(request, RequestStatus.FAILED)

    assert failed.error["code"] == "settings_mismatch"
    assert "settings fingerprint" in failed.error["message"]
    assert failed.attempts == 0
    assert failed.physical_name not in buckets(cloud, "alpha")


def test_prod_request_waits_for_approval_and_expires_if_its_deadline_passes_first(
    requester, operator, start_worker, broker, cloud
):
    from datetime import timedelta

    from django.utils import timezone

    request = submit(requester, unique_name("e2e"), environment="prod",
                     deadline=timezone.now() + timedelta(seconds=3))
    assert request.status == RequestStatus.PENDING_APPROVAL
    # Before approval only its plan is asked of prod's workers, not the job itself.
    assert broker.settled_count("prod", 1) == 1

    request_approve(request_id=request.pk, user=operator)
    assert broker.settled_count("prod", 2) == 2
    time.sleep(3.5)
    worker = start_worker("prod", name="prod-late")
    worker.wait_for("ready.")
    sweep()

    expired = wait_for(request, RequestStatus.EXPIRED)
    assert "deadline" in expired.error["message"]
    assert expired.physical_name not in buckets(cloud, "prod")


def test_worker_killed_mid_job_leaves_no_duplicate_and_the_sweep_finishes_the_request(
    requester, operator, start_worker, sandbox_faults, cloud
):
    first = start_worker("prod", name="prod-doomed")
    first.wait_for("ready.")
    sandbox_faults.set_faults(latency=0.5)  # every AWS call is slow: the job takes seconds
    request = submit(requester, unique_name("e2e"), environment="prod")
    request_approve(request_id=request.pk, user=operator)
    wait_for(request, RequestStatus.RUNNING)
    calls = sandbox_faults.calls("s3")
    deadline = time.monotonic() + 30
    while sandbox_faults.calls("s3") < calls + 3 and time.monotonic() < deadline:
        time.sleep(0.1)  # let it get into the middle of creating the bucket

    first.stop(signal.SIGKILL)
    sandbox_faults.set_faults(latency=0.0)
    killed = wait_for(request, RequestStatus.RUNNING)
    assert killed.lease_owner

    # Nothing renews the lease now; once it lapses the sweep takes the request back.
    time.sleep(6.5)
    report = sweep()
    assert str(request.pk) in report.reclaimed
    start_worker("prod", name="prod-rescue")
    done = wait_for(request, RequestStatus.SUCCEEDED, timeout=90)

    assert done.attempts == 2
    assert buckets(cloud, "prod").count(done.physical_name) == 1
    assert Resource.objects.filter(environment="prod", name=done.name).count() == 1
    assert ("running", "queued", "sweep") in [
        (e.from_status, e.to_status, e.actor) for e in done.events.all()
    ]
