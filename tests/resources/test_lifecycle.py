"""Every resource type's whole life through KRP's own services, run in-process as a worker
runs a job (no broker), against the sandbox AWS: create, a repeated job, recovery after a
worker died mid-job, update, delete. Then, once, how a request fails, retries or expires."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from dependency_injector import providers
from django.utils import timezone

from containers.settings import KrpSettings
from provisioning.cloud import CloudClients
from provisioning.models import RequestStatus, Resource, ResourceRequest, ResourceStatus
from provisioning.resources import resource_type
from provisioning.services import Outcome, execute_request
from provisioning.services.transitions import transition
from tests.fixtures.provisioning import make_context, unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

ACCOUNT, REGION = "111111111111", "ap-northeast-2"
CREATE_TAGS = {"cost-centre": "cc-4410"}
# The sandbox throttles S3 with AWS's own 503 SlowDown. The first attempt of a create
# under a name KRP never used starts with CreateBucket, which names SlowDown; every later
# attempt (a create was issued) first looks with HeadBucket, and a HEAD answer has no body
# to name SlowDown in, so botocore (against AWS too) knows the error only by its status:
# 503. Both transient, so both retried.
S3_CREATE_THROTTLED = "SlowDown"
S3_THROTTLED = "503"
UPDATE_TAGS = {"cost-centre": "cc-5120", "owner": "orders"}


@dataclass(frozen=True)
class Case:
    """One resource type: a realistic spec, and the mutable settings an update changes."""

    type: str
    spec: dict[str, Any]
    update: dict[str, Any]
    # sns_topic: subscribes to an sqs_queue that KRP makes first, through the same services.
    subscribes_a_queue: bool = field(default=False)


CASES = [
    Case(
        "s3_bucket",
        spec={"versioning": True, "lifecycle_expiration_days": 30},
        update={"lifecycle_expiration_days": 90},
    ),
    Case(
        "sqs_queue",
        spec={"visibility_timeout_seconds": 60, "message_retention_seconds": 86400,
              "dead_letter_queue": {"max_receive_count": 5}},
        update={"visibility_timeout_seconds": 120},
    ),
    Case(
        "sns_topic",
        spec={"display_name": "Orders"},
        update={"display_name": "Orders and refunds"},
        subscribes_a_queue=True,
    ),
    Case(
        "dynamodb_table",
        spec={"partition_key": {"name": "order_id", "type": "S"},
              "sort_key": {"name": "placed_at", "type": "N"}},
        update={"billing_mode": "PROVISIONED", "read_capacity": 5, "write_capacity": 5},
    ),
    Case(
        "iam_role",
        spec={
            "trusted_service": "lambda.amazonaws.com",
            "managed_policy_arns": ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
            "inline_policy": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sqs:SendMessage",
                "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:krp-alpha-orders",
            }]},
            "description": "reads order exports",
        },
        update={"description": "reads and archives order exports",
                "max_session_duration_seconds": 7200},
    ),
]


@pytest.fixture(params=CASES, ids=lambda case: case.type)
def case(request) -> Case:
    return request.param


# --- the cloud, seen directly with boto3 --------------------------------------------------

def _paged(client, operation: str, key: str, **kwargs) -> list:
    return [item for page in client.get_paginator(operation).paginate(**kwargs)
            for item in page[key]]


def _queue_names(sqs, physical_name: str) -> list[str]:
    urls = sqs.list_queues(QueueNamePrefix=physical_name).get("QueueUrls", [])
    return [url.rsplit("/", 1)[-1] for url in urls]


def _delete_role(iam, name: str) -> None:
    for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    iam.delete_role(RoleName=name)


# type -> (service, names of that type in the account, delete one by its physical name)
CLOUD = {
    "s3_bucket": (
        "s3",
        lambda s3, _: [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]],
        lambda s3, name: s3.delete_bucket(Bucket=name),
    ),
    "sqs_queue": (
        "sqs",
        _queue_names,
        lambda sqs, name: sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"]),
    ),
    "sns_topic": (
        "sns",
        lambda sns, _: [t["TopicArn"].rsplit(":", 1)[-1] for t in _paged(sns, "list_topics",
                                                                           "Topics")],
        lambda sns, name: sns.delete_topic(TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"),
    ),
    "dynamodb_table": (
        "dynamodb",
        lambda dynamodb, _: _paged(dynamodb, "list_tables", "TableNames"),
        lambda dynamodb, name: dynamodb.delete_table(TableName=name),
    ),
    "iam_role": (
        "iam",
        lambda iam, _: [role["RoleName"] for role in _paged(iam, "list_roles", "Roles",
                                                            PathPrefix="/krp/")],
        _delete_role,
    ),
}


def count_in_cloud(clients: CloudClients, type_name: str, physical_name: str,
                   environment: str = "alpha") -> int:
    """How many resources of that type and name the environment's account holds."""
    service, names, _ = CLOUD[type_name]
    return names(clients.client(environment, service), physical_name).count(physical_name)


def delete_behind_krps_back(cloud: CloudClients, type_name: str, physical_name: str) -> None:
    service, _, delete = CLOUD[type_name]
    delete(cloud.client("alpha", service), physical_name)


# --- KRP, driven as a worker drives it ----------------------------------------------------

def run(request: ResourceRequest) -> Outcome:
    """One attempt, exactly as the worker's task makes it for the message it received."""
    return execute_request(request_id=str(request.pk), task_id=request.task_id)


def make_due(request: ResourceRequest) -> None:
    """Bring a retry forward, as if its backoff had passed."""
    ResourceRequest.objects.filter(pk=request.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def provision(user, type_name: str, name: str, spec: dict) -> ResourceRequest:
    request = submit(user, name, resource_type=type_name, spec=spec, tags=CREATE_TAGS,
                     expect_new=True)
    outcome = run(request)
    assert outcome.status == "succeeded", outcome.detail
    request.refresh_from_db()
    return request


def create_spec(user, case: Case) -> dict[str, Any]:
    """The case's spec; a topic's first gets the queue it subscribes to, made through KRP."""
    if not case.subscribes_a_queue:
        return case.spec
    queue = unique_name("orders")
    provision(user, "sqs_queue", queue, {})
    return {**case.spec, "subscriptions": [{"queue": queue, "raw_message_delivery": True}]}


def create(user, case: Case) -> ResourceRequest:
    """A resource of the case's type, made and recorded; returns its (succeeded) request."""
    return provision(user, case.type, new_name(case), create_spec(user, case))


def new_name(case: Case) -> str:
    return unique_name(case.type.split("_")[0])


def inventory_arns() -> dict[tuple[str, str], str]:
    return {
        (row.resource_type, row.name): row.arn
        for row in Resource.objects.filter(environment="alpha", status=ResourceStatus.ACTIVE)
    }


def context(krp_settings, cloud, created: ResourceRequest, environment: str = "alpha"):
    """The provisioner's context for the resource `created` made, as the worker builds it."""
    return make_context(
        krp_settings, cloud, kind=created.resource_type, name=created.name,
        environment=environment, spec=created.spec, creating_request_id=str(created.pk),
        tags=CREATE_TAGS, references=inventory_arns(),
    )


def describe(krp_settings, cloud, created: ResourceRequest, environment: str = "alpha"):
    kind = resource_type(created.resource_type)
    return kind.describe(context(krp_settings, cloud, created, environment))


def live_row(case: Case, name: str) -> Resource:
    return Resource.objects.get(environment="alpha", resource_type=case.type, name=name)


def assert_arn_in_alpha(case: Case, outputs: dict[str, Any], physical_name: str) -> None:
    _, _, _, region, account, _ = outputs["arn"].split(":", 5)
    if case.type == "s3_bucket":
        # A bucket ARN names neither account nor region; its region is an output of its own.
        assert (region, account) == ("", "")
        assert outputs["arn"] == f"arn:aws:s3:::{physical_name}"
        assert outputs["region"] == REGION
    elif case.type == "iam_role":
        assert (region, account) == ("", ACCOUNT)  # IAM is global: the account only
    else:
        assert (region, account) == (REGION, ACCOUNT)


# --- every resource type ------------------------------------------------------------------

def test_create_lands_in_alpha_is_recorded_and_tagged(case, requester, krp_settings, cloud):
    spec = create_spec(requester, case)
    request = submit(requester, new_name(case), resource_type=case.type, spec=spec,
                     tags=CREATE_TAGS, expect_new=True)

    outcome = run(request)

    assert outcome.status == "succeeded", outcome.detail
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED
    assert_arn_in_alpha(case, request.outputs, request.physical_name)
    resource = live_row(case, request.name)
    assert resource.status == ResourceStatus.ACTIVE
    assert resource.arn == request.outputs["arn"]
    assert resource.physical_name == request.physical_name
    assert resource.created_by_request_id == request.pk
    assert resource.tags.items() >= {
        "cost-centre": "cc-4410",
        "krp:managed-by": "krp",
        "krp:request-id": str(request.pk),
        "krp:environment": "alpha",
        "krp:team": "platform",
    }.items()
    observed = describe(krp_settings, cloud, request)
    assert observed is not None
    assert observed.arn == resource.arn
    assert observed.tags == resource.tags
    assert describe(krp_settings, cloud, request, environment="prod") is None
    assert count_in_cloud(cloud, case.type, request.physical_name, environment="prod") == 0


def test_running_a_finished_request_again_changes_nothing(case, requester, cloud):
    request = create(requester, case)

    outcome = run(request)

    assert outcome.status == "skipped"
    assert outcome.detail == "request is succeeded"
    assert Resource.objects.filter(resource_type=case.type, name=request.name).count() == 1
    assert count_in_cloud(cloud, case.type, request.physical_name) == 1


def test_worker_crash_after_creating_is_adopted_not_duplicated(
    case, requester, krp_settings, cloud
):
    request = submit(requester, new_name(case), resource_type=case.type,
                     spec=create_spec(requester, case), tags=CREATE_TAGS, expect_new=True)
    # The dead attempt, faithfully: a worker started the job under a lease, its provisioner
    # created the resource (tagged with this request's id), and the process died before it
    # recorded anything - so the request is left running under a lease that has lapsed, and
    # no inventory row exists. Nothing is deleted or rewound by hand.
    transition(
        request.pk, from_statuses=[RequestStatus.QUEUED], to=RequestStatus.RUNNING,
        actor="worker", message="attempt 1 on dead:1", attempts=1,
        started_at=timezone.now(), lease_owner="dead:1",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    kind = resource_type(case.type)
    kind.create(context(krp_settings, cloud, request), kind.parse_spec(request.spec))
    assert count_in_cloud(cloud, case.type, request.physical_name) == 1

    outcome = run(request)

    assert outcome.status == "succeeded", outcome.detail
    request.refresh_from_db()
    assert request.attempts == 2
    assert "taking over from dead:1" in request.events.filter(
        to_status=RequestStatus.RUNNING).last().message
    assert live_row(case, request.name).arn == request.outputs["arn"]
    assert count_in_cloud(cloud, case.type, request.physical_name) == 1


def test_update_applies_new_settings_and_tags(case, requester, krp_settings, cloud):
    created = create(requester, case)
    update = submit(requester, created.name, resource_type=case.type, action="update",
                    spec={**created.spec, **case.update}, tags=UPDATE_TAGS, expect_new=True)

    outcome = run(update)

    assert outcome.status == "succeeded", outcome.detail
    update.refresh_from_db()
    observed = describe(krp_settings, cloud, created)
    assert {key: observed.settings[key] for key in case.update} == case.update
    assert observed.tags["cost-centre"] == "cc-5120"
    assert observed.tags["owner"] == "orders"
    # The resource still answers to the request that created it.
    assert observed.tags["krp:request-id"] == str(created.pk)
    resource = live_row(case, created.name)
    assert resource.spec == update.spec
    assert resource.spec.items() >= case.update.items()
    assert resource.tags == observed.tags
    assert update.resource_id == resource.pk


def test_delete_removes_it_and_records_it_deleted(case, requester, krp_settings, cloud):
    created = create(requester, case)
    delete = submit(requester, created.name, resource_type=case.type, action="delete",
                    expect_new=True)

    outcome = run(delete)

    assert outcome.status == "succeeded", outcome.detail
    resource = Resource.objects.get(pk=created.resource_id)
    assert resource.status == ResourceStatus.DELETED
    assert resource.deleted_at is not None
    assert describe(krp_settings, cloud, created) is None
    assert count_in_cloud(cloud, case.type, created.physical_name) == 0


def test_deleting_what_is_already_gone_succeeds(case, requester, krp_settings, cloud):
    created = create(requester, case)
    delete_behind_krps_back(cloud, case.type, created.physical_name)
    delete = submit(requester, created.name, resource_type=case.type, action="delete",
                    expect_new=True)

    outcome = run(delete)

    assert outcome.status == "succeeded", outcome.detail
    assert Resource.objects.get(pk=created.resource_id).status == ResourceStatus.DELETED
    assert describe(krp_settings, cloud, created) is None


# --- failures, retries, deadlines, accounts (the same for every type) ---------------------

def test_permanent_aws_error_fails_at_once_and_leaves_nothing_behind(requester, cloud):
    request = submit(requester, unique_name("iam"), resource_type="iam_role", spec={
        "trusted_service": "lambda.amazonaws.com",
        "managed_policy_arns": ["arn:aws:iam::aws:policy/DoesNotExist"],
    }, expect_new=True)

    outcome = run(request)

    assert outcome.status == "failed"
    assert outcome.retry_in is None
    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED
    assert request.error_code == "NoSuchEntity"
    assert request.attempts == 1
    assert request.next_attempt_at is None
    assert not Resource.objects.filter(name=request.name).exists()
    # No role either: one in no inventory would block a corrected request of this name.
    assert count_in_cloud(cloud, "iam_role", request.physical_name) == 0


def test_throttled_request_is_retried_later_and_then_succeeds(requester, sandbox_faults, cloud):
    sandbox_faults.set_faults(throttle_rate=1.0, services=["s3"])
    request = submit(requester, unique_name("s3"), resource_type="s3_bucket",
                     spec={"versioning": True}, expect_new=True)

    outcome = run(request)

    assert outcome.status == "retrying"
    assert outcome.retry_in > 0
    request.refresh_from_db()
    assert request.status == RequestStatus.QUEUED
    assert request.error_code == S3_CREATE_THROTTLED
    assert request.next_attempt_at > request.started_at
    assert request.lease_owner == ""
    event = request.events.last()
    assert (event.from_status, event.to_status) == ("running", "queued")
    assert f"attempt 1 hit {S3_CREATE_THROTTLED}" in event.message
    assert "retrying in" in event.message

    sandbox_faults.set_faults(throttle_rate=0.0)
    make_due(request)
    outcome = run(request)

    assert outcome.status == "succeeded", outcome.detail
    request.refresh_from_db()
    assert request.attempts == 2
    assert request.error_code == ""
    assert count_in_cloud(cloud, "s3_bucket", request.physical_name) == 1


def test_throttled_request_outlives_the_attempt_budget_and_fails_only_at_its_deadline(
    requester, sandbox_faults, krp_settings
):
    assert krp_settings.max_attempts == 4
    sandbox_faults.set_faults(throttle_rate=1.0, services=["s3"])
    request = submit(requester, unique_name("s3"), resource_type="s3_bucket",
                     deadline=timezone.now() + timedelta(minutes=10), expect_new=True)

    outcomes = []
    for _ in range(krp_settings.max_attempts + 2):
        outcomes.append(run(request).status)
        make_due(request)

    # Throttling is budgeted by time: six attempts, and still going.
    assert outcomes == ["retrying"] * 6
    request.refresh_from_db()
    assert (request.status, request.attempts, request.weather_attempts) == ("queued", 6, 6)
    assert "(time budget)" in request.events.last().message

    # The deadline comes nearer than the next backoff: now it fails, saying why.
    ResourceRequest.objects.filter(pk=request.pk).update(
        deadline=timezone.now() + timedelta(seconds=1))
    outcome = run(request)

    assert outcome.status == "failed"
    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED
    assert request.error_code == S3_THROTTLED


def test_throttled_request_without_a_deadline_fails_when_its_time_budget_is_spent(
    requester, sandbox_faults, krp_settings
):
    assert krp_settings.transient_budget_seconds == 3600
    sandbox_faults.set_faults(throttle_rate=1.0, services=["s3"])
    request = submit(requester, unique_name("s3"), resource_type="s3_bucket", expect_new=True)
    assert run(request).status == "retrying"
    make_due(request)
    # As if it had been queued an hour ago: KRP_TRANSIENT_BUDGET_SECONDS is spent.
    ResourceRequest.objects.filter(pk=request.pk).update(
        queued_at=timezone.now() - timedelta(seconds=3600),
        created_at=timezone.now() - timedelta(seconds=3600))

    outcome = run(request)

    assert outcome.status == "failed"
    request.refresh_from_db()
    assert (request.status, request.error_code, request.attempts) == ("failed", S3_THROTTLED, 2)


def test_other_transient_errors_keep_the_attempt_budget(requester, krp_settings):
    # Attempts that the weather took do not count against KRP_MAX_ATTEMPTS; others do.
    request = submit(requester, unique_name("s3"), resource_type="s3_bucket", expect_new=True)
    ResourceRequest.objects.filter(pk=request.pk).update(
        attempts=9, weather_attempts=7, error_code="OperationAborted")
    assert run(request).status == "succeeded"

    spent = submit(requester, unique_name("s3"), resource_type="s3_bucket", expect_new=True)
    ResourceRequest.objects.filter(pk=spent.pk).update(
        attempts=krp_settings.max_attempts, weather_attempts=0, error_code="OperationAborted")
    outcome = run(spent)

    assert (outcome.status, outcome.detail) == ("failed", "attempt budget spent")
    spent.refresh_from_db()
    assert spent.error_code == "OperationAborted"
    assert "gave up after 4 attempts (KRP_MAX_ATTEMPTS=4)" in spent.error_message


def test_request_past_its_deadline_expires_without_running(requester, krp_settings, cloud):
    request = submit(requester, unique_name("s3"), resource_type="s3_bucket",
                     deadline=timezone.now() + timedelta(seconds=1), expect_new=True)
    time.sleep(max(0.0, (request.deadline - timezone.now()).total_seconds()) + 0.05)

    outcome = run(request)

    assert outcome.status == "expired"
    request.refresh_from_db()
    assert request.status == RequestStatus.EXPIRED
    assert request.attempts == 0
    assert describe(krp_settings, cloud, request) is None


def test_credentials_of_another_account_fail_the_request_untouched(
    requester, container, sandbox, krp_settings, cloud
):
    request = submit(requester, unique_name("s3"), resource_type="s3_bucket", expect_new=True)
    # alpha claims account 333333333333 but has no role: the sandbox's plain keys resolve
    # to its default account, 123456789012.
    other = KrpSettings.from_environ({**os.environ, "KRP_ENVIRONMENTS": json.dumps({
        "alpha": {"account_id": "333333333333", "region": REGION, "endpoint_url": sandbox.url},
    })})
    container.settings.override(providers.Object(other))
    # The clients and the identity guard are singletons built from the old settings, and
    # the guard remembers alpha as confirmed; without this they would go on serving.
    container.reset_singletons()

    outcome = run(request)

    assert outcome.status == "failed"
    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED
    assert request.error_code == "wrong_account"
    assert "configured for account 333333333333" in request.error_message
    assert "resolve to account 123456789012" in request.error_message
    assert describe(krp_settings, cloud, request) is None
    # Nor in the account the credentials did reach.
    assert count_in_cloud(CloudClients(other), "s3_bucket", request.physical_name) == 0


def test_create_refused_halfway_removes_what_it_made(requester, sandbox_faults, cloud):
    # The table is made, then a later step (point-in-time recovery) is refused.
    sandbox_faults.set_faults(deny_actions=["UpdateContinuousBackups"])
    request = submit(requester, unique_name("ddb"), resource_type="dynamodb_table", spec={
        "partition_key": {"name": "id", "type": "S"}, "point_in_time_recovery": True,
    }, expect_new=True)

    outcome = run(request)

    assert outcome.status == "failed"
    request.refresh_from_db()
    assert request.error_code == "AccessDeniedException"
    assert (f"removed the partly made dynamodb_table {request.physical_name}"
            in request.error_message)
    assert count_in_cloud(cloud, "dynamodb_table", request.physical_name) == 0
    assert not Resource.objects.filter(name=request.name).exists()
