"""The AWS calls a create sends: only those it needs when KRP never used the name, a
lookup first whenever an earlier attempt (or another request) may have made something."""

import pytest
from django.db import connection
from django.utils import timezone

from provisioning.models import RequestStatus, Resource, ResourceRequest
from provisioning.resources import resource_type
from provisioning.services import execute_request
from tests.fixtures.provisioning import make_context, operations_sent, unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

S3_AND_SQS = ("s3", "sqs")
FULL_S3 = {"versioning": True, "lifecycle_expiration_days": 30, "encryption": "aws:kms"}
FULL_SQS = {"visibility_timeout_seconds": 60, "delay_seconds": 5,
            "dead_letter_queue": {"max_receive_count": 3}}


def run_sending(container, request: ResourceRequest) -> list[str]:
    """Run one attempt of `request` as the worker does; the operations it sent."""
    with operations_sent(container.cloud(), *S3_AND_SQS) as sent:
        execute_request(request_id=str(request.pk), task_id=request.task_id)
    request.refresh_from_db()
    return sent


@pytest.mark.parametrize(("type_name", "spec", "expected"), [
    ("s3_bucket", {}, ["CreateBucket", "PutBucketTagging", "PutPublicAccessBlock",
                       "PutBucketEncryption"]),
    ("s3_bucket", FULL_S3, ["CreateBucket", "PutBucketTagging", "PutPublicAccessBlock",
                            "PutBucketEncryption", "PutBucketVersioning",
                            "PutBucketLifecycleConfiguration"]),
    # CreateQueue does not refuse a name in use (it answers an existing queue of equal
    # attributes), so SQS looks first; CreateQueue carries every attribute and the tags,
    # and ListQueueTags proves the queue it answered with is the one it made.
    ("sqs_queue", {}, ["GetQueueUrl", "CreateQueue", "ListQueueTags"]),
    ("sqs_queue", FULL_SQS, ["GetQueueUrl", "GetQueueUrl", "CreateQueue", "ListQueueTags",
                             "CreateQueue", "ListQueueTags"]),
])
def test_first_create_under_a_new_name_sends_only_the_calls_that_make_it(
    requester, container, type_name, spec, expected
):
    request = submit(requester, unique_name("new"), resource_type=type_name, spec=spec)

    sent = run_sending(container, request)

    assert request.status == RequestStatus.SUCCEEDED, request.error_message
    assert sent == expected


@pytest.mark.parametrize(("type_name", "spec"), [
    ("s3_bucket", {}), ("s3_bucket", FULL_S3), ("sqs_queue", {}), ("sqs_queue", FULL_SQS),
])
def test_what_a_first_create_records_is_what_the_cloud_holds(
    requester, container, krp_settings, cloud, type_name, spec
):
    request = submit(requester, unique_name("new"), resource_type=type_name, spec=spec)
    execute_request(request_id=str(request.pk), task_id=request.task_id)
    request.refresh_from_db()
    kind = resource_type(type_name)

    ctx = make_context(krp_settings, cloud, kind=kind, name=request.name, spec=spec,
                       creating_request_id=str(request.pk))
    observed = kind.describe(ctx)

    assert request.status == RequestStatus.SUCCEEDED, request.error_message
    assert {k: v for k, v in request.outputs.items() if k != "physical_name"} == (
        observed.outputs())
    resource = Resource.objects.get(pk=request.resource_id)
    assert (resource.arn, resource.physical_id, resource.tags) == (
        observed.arn, observed.physical_id, observed.tags)
    assert observed.settings == kind.expected_settings(kind.parse_spec(spec))


@pytest.mark.parametrize(("type_name", "lookup"), [
    ("s3_bucket", "HeadBucket"), ("sqs_queue", "GetQueueUrl"),
])
def test_an_attempt_after_a_create_was_issued_looks_up_first_and_adopts_what_it_made(
    requester, container, cloud, type_name, lookup
):
    request = submit(requester, unique_name("again"), resource_type=type_name)
    execute_request(request_id=str(request.pk), task_id=request.task_id)
    request.refresh_from_db()
    made = request.outputs
    # As if the run had died after its calls and before recording success: its lease
    # lapses and another run takes the request over.
    ResourceRequest.objects.filter(pk=request.pk).update(resource=None)
    Resource.objects.filter(created_by_request=request).delete()
    ResourceRequest.objects.filter(pk=request.pk).update(
        status=RequestStatus.RUNNING, lease_expires_at=timezone.now())

    sent = run_sending(container, request)

    assert request.status == RequestStatus.SUCCEEDED, request.error_message
    assert request.attempts == 2
    assert sent[0] == lookup
    assert not any(op.startswith("Create") for op in sent)
    assert request.outputs == made


def test_a_create_under_a_name_another_request_issued_a_create_for_looks_up_first(
    requester, container
):
    name = unique_name("reused")
    earlier = submit(requester, name)
    # That request sent its create and then failed: its bucket may stand there.
    ResourceRequest.objects.filter(pk=earlier.pk).update(
        status=RequestStatus.FAILED, create_issued_at=timezone.now())
    request = submit(requester, name)

    sent = run_sending(container, request)

    assert request.status == RequestStatus.SUCCEEDED, request.error_message
    assert sent[0] == "HeadBucket"


def test_a_first_create_does_not_adopt_a_strangers_queue_of_equal_attributes(
    requester, container, cloud
):
    request = submit(requester, unique_name("stranger"), resource_type="sqs_queue")
    sqs = cloud.client("alpha", "sqs")
    # Made by hand with SQS's defaults, which are KRP's: CreateQueue would answer its URL
    # (and moto would tag it as asked), so only a look first tells it from ours.
    url = sqs.create_queue(QueueName=request.physical_name)["QueueUrl"]

    sent = run_sending(container, request)

    assert "CreateQueue" not in sent
    assert request.status == RequestStatus.FAILED
    assert "not managed by KRP" in request.error_message
    assert not sqs.list_queue_tags(QueueUrl=url).get("Tags")
    assert sqs.get_queue_url(QueueName=request.physical_name)["QueueUrl"] == url


def test_one_create_costs_a_bounded_number_of_queries(
    requester, django_assert_max_num_queries
):
    warm = submit(requester, unique_name("warm"))  # the identity guard's first look
    execute_request(request_id=str(warm.pk), task_id=warm.task_id)
    request = submit(requester, unique_name("queries"))
    connection.queries_log.clear()

    # Start (read with the name check, update, event, re-read), the create's record,
    # one fence check per write (4), success (update, event, re-read), the inventory
    # row and its link: 15, and the savepoints of the test's transaction.
    with django_assert_max_num_queries(20):
        execute_request(request_id=str(request.pk), task_id=request.task_id)

    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED


@pytest.mark.parametrize(("type_name", "service", "create"), [
    ("dynamodb_table", "dynamodb", "CreateTable"), ("iam_role", "iam", "CreateRole"),
])
def test_a_first_create_whose_call_refuses_a_name_in_use_sends_it_without_a_look(
    requester, container, type_name, service, create
):
    kind = resource_type(type_name)
    request = submit(requester, unique_name("new"), resource_type=type_name,
                     spec=kind.example_spec)

    with operations_sent(container.cloud(), service) as sent:
        execute_request(request_id=str(request.pk), task_id=request.task_id)
    request.refresh_from_db()

    assert request.status == RequestStatus.SUCCEEDED, request.error_message
    # IAM first checks that each managed policy the spec names exists (GetPolicy).
    assert [op for op in sent if op != "GetPolicy"][0] == create
