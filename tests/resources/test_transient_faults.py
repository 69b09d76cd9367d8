"""Throttling and dropped connections are weather, not failure: requests ride them out and
a create whose answer was lost is adopted, never made twice. A failed create whose
rollback cannot finish says what it left, and reconcile finds it by name until it is gone.
Each fault is the sandbox's own, against real moto."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from provisioning.models import FindingKind, RequestStatus, Resource, ResourceRequest
from provisioning.services import Outcome, execute_request, request_approve
from provisioning.services.reconcile import reconcile
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit
from tests.resources.test_lifecycle import count_in_cloud

# Committed rows: a run's lease keeper renews on a connection of its own, which would not
# see a request inside a test's transaction, and would take the lease for lost as soon as a
# run lasted a third of a lease (a retry's backoff, a first identity check). In prod, whose
# queue no session worker consumes, so only the test runs these requests.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sandbox")]


def run_to_the_end(request: ResourceRequest) -> Outcome:
    """Every attempt of a request, waiting out each backoff, as the eager task does."""
    outcome = execute_request(request_id=str(request.pk), task_id=request.task_id)
    while outcome.retry_in is not None:
        time.sleep(outcome.retry_in)
        outcome = execute_request(request_id=str(request.pk), task_id=request.task_id)
    return outcome


def queued_in_prod(requester, operator, name: str, **fields) -> ResourceRequest:
    """A request in prod, approved: queued, with its rows committed, and run only by the
    test (no session worker consumes prod's queue)."""
    request = submit(requester, name, environment="prod", expect_new=True, **fields)
    request_approve(request_id=request.pk, user=operator)
    request.refresh_from_db()
    assert request.status == RequestStatus.QUEUED
    return request


CREATE_CALLS = [
    ("s3_bucket", "s3", "CreateBucket", {}),
    ("sqs_queue", "sqs", "CreateQueue", {}),
    ("sns_topic", "sns", "CreateTopic", {}),
    ("dynamodb_table", "dynamodb", "CreateTable", {"partition_key": {"name": "id",
                                                                     "type": "S"}}),
    ("iam_role", "iam", "CreateRole", {"trusted_service": "lambda.amazonaws.com"}),
]


@pytest.mark.parametrize(("type_name", "service", "operation", "spec"), CREATE_CALLS,
                         ids=[case[0] for case in CREATE_CALLS])
def test_create_whose_connection_dropped_is_retried_and_adopted_not_duplicated(
    requester, operator, sandbox_faults, cloud, type_name, service, operation, spec
):
    # Every create call is carried out by moto, then its connection is dropped unanswered.
    sandbox_faults.set_faults(drop_rate=1.0, drop_actions=[operation], services=[service])
    request = queued_in_prod(requester, operator, unique_name("drop"), resource_type=type_name,
                             spec=spec)

    first = execute_request(request_id=str(request.pk), task_id=request.task_id)

    assert first.status == "retrying", first.detail
    request.refresh_from_db()
    assert request.error_code == "NetworkError"
    assert "may or may not have taken effect" in request.error_message
    assert sandbox_faults._call("/_krp/calls")["dropped"].get(service, 0) >= 1

    outcome = run_to_the_end(request)

    assert outcome.status == "succeeded", outcome.detail
    request.refresh_from_db()
    assert count_in_cloud(cloud, type_name, request.physical_name, environment="prod") == 1
    assert Resource.objects.get(created_by_request=request).tags["krp:request-id"] == str(
        request.pk)


def test_failed_create_whose_rollback_is_refused_is_left_behind_until_reconcile_fixes_it(
    requester, operator, sandbox_faults, cloud
):
    # The bucket is made, its tagging is refused (so it is untagged: invisible to the
    # Tagging API), and the rollback's DeleteBucket is refused too.
    sandbox_faults.set_faults(deny_actions=["PutBucketTagging", "DeleteBucket"])
    request = queued_in_prod(requester, operator, unique_name("left"))

    outcome = execute_request(request_id=str(request.pk), task_id=request.task_id)

    assert outcome.status == "failed"
    request.refresh_from_db()
    assert request.error_code == "AccessDenied"
    assert f"s3_bucket {request.physical_name} may be left in the cloud" in (
        request.error_message)
    assert request.left_behind == [request.physical_name]
    assert count_in_cloud(cloud, "s3_bucket", request.physical_name, environment="prod") == 1
    arn = f"arn:aws:s3:::{request.physical_name}"

    report = reconcile(environment="prod")

    finding = report.findings.get(arn=arn)
    assert finding.kind == FindingKind.LEFT_BEHIND and not finding.resolved
    assert finding.details["request"] == str(request.pk)
    assert finding.details["tags"] == {}
    assert not report.findings.filter(kind=FindingKind.ORPHAN, arn=arn).exists()

    # Still refused: --fix cannot remove it, and says so; it stays reported.
    still = reconcile(environment="prod", fix=True).findings.get(arn=arn)
    assert not still.resolved
    assert "not authorized to perform: DeleteBucket" in still.details["not_fixed"]
    request.refresh_from_db()
    assert request.left_behind == [request.physical_name]

    sandbox_faults.set_faults(deny_actions=[])
    fixed = reconcile(environment="prod", fix=True).findings.get(arn=arn)

    assert fixed.action_taken == "deleted from the cloud"
    assert count_in_cloud(cloud, "s3_bucket", request.physical_name, environment="prod") == 0
    request.refresh_from_db()
    assert request.left_behind == []
    assert not reconcile(environment="prod").findings.filter(arn=arn).exists()


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_failed_create_whose_rollback_is_throttled_is_rolled_back_on_retry(
    requester, operator, sandbox_faults, cloud, caplog
):
    # The bucket is made and its tagging refused: the create fails for good. Each call
    # takes 0.3 s, so the test sees the refused call arrive and throttles every S3 call
    # before the rollback makes its first; once the rollback has been throttled twice,
    # the throttling stops.
    caplog.set_level("INFO", logger="provisioning.services.execution")
    sandbox_faults.set_faults(deny_actions=["PutBucketTagging"], latency=0.3)
    request = queued_in_prod(requester, operator, unique_name("rollback"))
    s3_calls = sandbox_faults.calls("s3")

    def throttled() -> int:
        return sandbox_faults._call("/_krp/calls")["throttled"].get("s3", 0)

    outcomes: list[Outcome] = []

    def run() -> None:
        try:
            outcomes.append(run_to_the_end(request))
        finally:
            connection.close()

    runner = threading.Thread(target=run)
    runner.start()
    try:
        # CreateBucket (a name never used: no look first), PutBucketTagging (refused).
        wait_until(lambda: sandbox_faults.calls("s3") >= s3_calls + 2)
        sandbox_faults.set_faults(throttle_rate=1.0, services=["s3"], latency=0.0)
        before = throttled()
        # Two tries of the rollback, each a call that botocore sent twice.
        wait_until(lambda: throttled() >= before + 4 or not runner.is_alive())
        sandbox_faults.set_faults(throttle_rate=0.0)
    finally:
        runner.join(timeout=120)

    assert [outcome.status for outcome in outcomes] == ["failed"]
    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED
    assert request.error_code == "AccessDenied"
    assert "not authorized to perform: PutBucketTagging" in request.error_message
    assert f"removed the partly made s3_bucket {request.physical_name}" in (
        request.error_message)
    assert request.left_behind == []
    # Its first call, HeadBucket, was throttled: a HEAD answer has no body, so no SlowDown.
    retried = [r.getMessage() for r in caplog.records
               if r.getMessage().startswith(f"roll back of s3_bucket {request.physical_name} "
                                            "hit 503; trying again")]
    assert len(retried) >= 2, retried
    assert count_in_cloud(cloud, "s3_bucket", request.physical_name, environment="prod") == 0
    arn = f"arn:aws:s3:::{request.physical_name}"
    assert not reconcile(environment="prod").findings.filter(arn=arn).exists()
