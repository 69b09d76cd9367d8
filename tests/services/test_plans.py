"""Plans against the sandbox: a prod update is planned before approval with its exact
field changes and approving applies exactly them; a change made behind KRP's back between
plan and approval stops the apply and plans again; an update with no changes sends no
mutating call; creates and deletes say what they will make or take away."""

import pytest

from provisioning.models import RequestAction, RequestStatus, ResourceRequest
from provisioning.services import execute_request, request_approve
from provisioning.services.execution import plan_waiting
from tests.fixtures.provisioning import operations_sent, unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]


def run(request: ResourceRequest) -> ResourceRequest:
    execute_request(request_id=str(request.pk), task_id=request.task_id)
    request.refresh_from_db()
    return request


def approved_and_run(request: ResourceRequest, operator) -> ResourceRequest:
    request_approve(request_id=request.pk, user=operator)
    request.refresh_from_db()
    return run(request)


@pytest.fixture
def prod_bucket(requester, operator):
    """A bucket made in prod (versioning off, no user tags): its create request."""
    created = submit(requester, unique_name("plan"), environment="prod", expect_new=True)
    created = approved_and_run(created, operator)
    assert created.status == RequestStatus.SUCCEEDED, created.error_message
    return created


def update_of(created, requester, **fields) -> ResourceRequest:
    return submit(requester, created.name, environment="prod", action=RequestAction.UPDATE,
                  expect_new=True, **fields)


def test_a_prod_update_is_planned_before_approval_and_approving_applies_exactly_it(
    requester, operator, prod_bucket, cloud
):
    update = update_of(prod_bucket, requester, spec={"versioning": True},
                       tags={"owner": "data"})
    assert update.status == RequestStatus.PENDING_APPROVAL

    plan = update.plan  # made as it was recorded, by "a worker of prod" (tests/fixtures)

    assert plan_waiting(request_id=str(update.pk)) is None  # planned once
    assert plan["lines"] == [
        f"will update s3_bucket {update.physical_name}: 2 changes",
        "versioning: false -> true",
        'tags.owner: + "data"',
    ]
    update.refresh_from_db()
    assert update.plan["lines"] == plan["lines"]
    assert update.events.last().message.startswith("planned: will update")

    done = approved_and_run(update, operator)

    assert done.status == RequestStatus.SUCCEEDED, done.error_message
    assert done.plan["checked"] is True and done.plan["lines"] == plan["lines"]
    s3 = cloud.client("prod", "s3")
    assert s3.get_bucket_versioning(Bucket=update.physical_name)["Status"] == "Enabled"
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(
        Bucket=update.physical_name)["TagSet"]}
    assert tags["owner"] == "data"


def test_a_change_behind_krps_back_after_the_plan_stops_the_apply_and_plans_again(
    requester, operator, prod_bucket, cloud
):
    update = update_of(prod_bucket, requester, spec={"versioning": True})
    s3 = cloud.client("prod", "s3")
    tag_set = s3.get_bucket_tagging(Bucket=update.physical_name)["TagSet"]
    s3.put_bucket_tagging(Bucket=update.physical_name,
                          Tagging={"TagSet": [*tag_set, {"Key": "rogue", "Value": "1"}]})

    stopped = approved_and_run(update, operator)

    assert stopped.status == RequestStatus.PENDING_APPROVAL
    assert stopped.plan["lines"] == [
        f"will update s3_bucket {update.physical_name}: 2 changes",
        "versioning: false -> true",
        'tags.rogue: - "1"',
    ]
    assert "the cloud changed since the plan was approved" in stopped.events.last().message
    # Nothing was applied: the bucket is as it was left behind KRP's back.
    assert s3.get_bucket_versioning(Bucket=update.physical_name).get("Status") is None

    done = approved_and_run(stopped, operator)
    assert done.status == RequestStatus.SUCCEEDED, done.error_message
    assert s3.get_bucket_versioning(Bucket=update.physical_name)["Status"] == "Enabled"


S3_WRITES = ["PutPublicAccessBlock", "PutBucketEncryption", "PutBucketVersioning",
             "PutBucketLifecycleConfiguration", "DeleteBucketLifecycle", "PutBucketTagging",
             "DeleteBucketTagging"]


def test_an_update_with_no_changes_succeeds_without_a_mutating_call(
    requester, container, sandbox_faults
):
    created = run(submit(requester, unique_name("same"), spec={"versioning": True},
                         expect_new=True))
    same = submit(requester, created.name, action=RequestAction.UPDATE,
                  spec={"versioning": True}, expect_new=True)
    # The sandbox refuses every write to a bucket: one sent would fail the request.
    sandbox_faults.set_faults(deny_actions=S3_WRITES)

    with operations_sent(container.cloud(), "s3") as sent:
        done = run(same)

    assert done.status == RequestStatus.SUCCEEDED, done.error_message
    assert done.plan["no_changes"] is True
    assert done.plan["lines"] == [f"no changes to s3_bucket {done.physical_name}"]
    assert sent and not [op for op in sent if op.startswith(("Put", "Delete", "Create"))]


def test_a_create_says_what_it_will_make(requester):
    done = run(submit(requester, unique_name("new"), spec={"versioning": True},
                      tags={"owner": "data"}, expect_new=True))

    assert done.plan["lines"][0] == f"will create s3_bucket {done.physical_name}"
    assert "versioning: + true" in done.plan["lines"]
    assert 'tags.owner: + "data"' in done.plan["lines"]


def test_a_queue_delete_names_the_subscriptions_that_go_with_it(requester, operator, cloud):
    queue = submit(requester, unique_name("q"), resource_type="sqs_queue",
                   environment="prod", expect_new=True)
    queue = approved_and_run(queue, operator)
    sns = cloud.client("prod", "sns")
    topic = sns.create_topic(Name=unique_name("outside"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue.outputs["arn"])
    delete = submit(requester, queue.name, resource_type="sqs_queue", environment="prod",
                    action=RequestAction.DELETE, expect_new=True)

    assert delete.plan["lines"] == [f"will delete sqs_queue {queue.physical_name} and the 1 "
                             "subscription that points at it"]


def test_the_plan_shows_in_the_api_the_admin_and_krp_status(
    requester, operator, prod_bucket, client
):
    from rest_framework.test import APIClient

    from tests.cli import krp

    update = update_of(prod_bucket, requester, spec={"versioning": True})
    lines = [f"will update s3_bucket {update.physical_name}: 1 change",
             "versioning: false -> true"]

    api = APIClient()
    api.force_authenticate(operator)
    body = api.get(f"/api/v1/requests/{update.pk}/").json()
    assert body["plan"]["lines"] == lines and "observed" not in body["plan"]
    assert body["plan"]["changes"] == [{"path": "versioning", "from": False, "to": True}]

    shown = krp("status", str(update.pk), "--user", "rita").stdout
    assert "plan: \n" in shown and all(f"  {line}" in shown for line in lines)

    operator.is_staff = True
    operator.save()
    from django.contrib.auth.models import Permission

    operator.user_permissions.add(Permission.objects.get(codename="view_resourcerequest"))
    client.force_login(operator)
    page = client.get(f"/admin/provisioning/resourcerequest/{update.pk}/change/")
    assert "versioning: false -&gt; true" in page.content.decode()


def test_a_request_cannot_be_approved_before_it_has_a_plan(requester, operator):
    from provisioning.errors import Conflict
    from provisioning.services import request_submit

    # Recorded as the API records it: its plan is asked of prod's workers, not made here.
    request, _ = request_submit(user=requester, environment="prod", resource_type="s3_bucket",
                                name=unique_name("blind"))

    with pytest.raises(Conflict) as refused:
        request_approve(request_id=request.pk, user=operator)

    assert refused.value.code == "not_planned"
    assert "a worker of prod plans it" in refused.value.message
    plan_waiting(request_id=str(request.pk))
    request_approve(request_id=request.pk, user=operator)
    request.refresh_from_db()
    assert request.status == RequestStatus.QUEUED
