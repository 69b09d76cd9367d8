"""Reconcile knows stack membership: a finding about a resource a stack member made names
the stack (name and id) and the member, in its details, in `krp reconcile`'s report and in
the admin, so the operator deciding on it knows that others in the stack may refer to it.
A resource asked for on its own says nothing of stacks."""

import pytest
from django.urls import reverse

from provisioning.models import FindingKind, Resource, Stack, StackStatus
from provisioning.services import execute_request, stack_submit
from provisioning.services.reconcile import reconcile
from tests.cli import krp_outcome
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit
from tests.fixtures.stacks import drive, stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]


@pytest.fixture
def orders(requester) -> Stack:
    """A stack of a queue and a bucket, both created in the sandbox."""
    stack = drive(stack_submit(user=requester, document={
        "environment": "alpha", "name": stack_name("orders"),
        "members": {"jobs": {"resource_type": "sqs_queue"},
                    "files": {"resource_type": "s3_bucket"}}})[0])
    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    return stack


def member_resource(stack: Stack, key: str) -> Resource:
    return stack.members.select_related("request__resource").get(key=key).request.resource


@pytest.fixture
def lost_files(orders, cloud) -> Resource:
    """The stack's bucket, deleted behind KRP's back."""
    bucket = member_resource(orders, "files")
    cloud.client("alpha", "s3").delete_bucket(Bucket=bucket.physical_name)
    return bucket


def test_a_missing_members_finding_names_its_stack_and_member(orders, lost_files):
    run = reconcile(environment="alpha")

    finding = run.findings.get(resource=lost_files)
    assert finding.kind == FindingKind.MISSING
    assert finding.details["stack"] == {"name": orders.name, "id": str(orders.pk)}
    assert finding.details["member"] == "files"


def test_a_drifted_members_finding_names_its_stack_and_member_beside_the_difference(
    orders, cloud
):
    queue = member_resource(orders, "jobs")
    sqs = cloud.client("alpha", "sqs")
    sqs.tag_queue(QueueUrl=sqs.get_queue_url(QueueName=queue.physical_name)["QueueUrl"],
                  Tags={"krp:team": "someone-else"})

    run = reconcile(environment="alpha")

    finding = run.findings.get(resource=queue)
    assert finding.kind == FindingKind.DRIFTED
    assert finding.details["tags.krp:team"]["actual"] == "someone-else"
    assert (finding.details["stack"]["name"], finding.details["member"]) == (orders.name, "jobs")


def test_what_a_members_failed_create_left_behind_names_its_stack_and_member(
    requester, sandbox_faults
):
    # The bucket is made but can be neither tagged nor deleted: the create fails and its
    # rollback leaves the bucket behind.
    sandbox_faults.set_faults(deny_actions=["PutBucketTagging", "DeleteBucket"])
    stack = drive(stack_submit(user=requester, document={
        "environment": "alpha", "name": stack_name("leaky"),
        "members": {"files": {"resource_type": "s3_bucket"}}})[0])
    sandbox_faults.set_faults(deny_actions=[])
    failed = stack.member_requests.get()
    assert stack.status == StackStatus.FAILED and failed.left_behind == [failed.physical_name]

    run = reconcile(environment="alpha")

    finding = run.findings.get(arn=f"arn:aws:s3:::{failed.physical_name}")
    assert finding.kind == FindingKind.LEFT_BEHIND
    assert finding.details["stack"] == {"name": stack.name, "id": str(stack.pk)}
    assert finding.details["member"] == "files"


def test_a_resource_asked_for_alone_has_no_stack_in_its_finding(requester, cloud):
    request = submit(requester, unique_name("alone"))
    execute_request(request_id=str(request.pk), task_id=request.task_id)
    bucket = Resource.objects.get(created_by_request=request)
    cloud.client("alpha", "s3").delete_bucket(Bucket=bucket.physical_name)

    run = reconcile(environment="alpha")

    details = run.findings.get(resource=bucket).details
    assert "stack" not in details and "member" not in details


def test_the_cli_report_says_under_the_finding_which_stack_and_member(orders, lost_files):
    report = krp_outcome("reconcile", "--env", "alpha").stdout.splitlines()

    line = next(i for i, text in enumerate(report) if text.endswith(lost_files.arn))
    assert report[line + 1] == f"           in stack {orders.name} ({orders.pk}), member files"


def test_the_admins_findings_link_to_the_stack(admin_client, orders, lost_files):
    run = reconcile(environment="alpha")
    stack_page = reverse("admin:provisioning_stack_change", args=[orders.pk])
    link = f'<a href="{stack_page}">{orders.name}</a>, member files'

    findings = admin_client.get(reverse("admin:provisioning_finding_changelist"),
                                {"q": lost_files.arn}).content.decode()
    run_page = admin_client.get(reverse("admin:provisioning_reconcilerun_change",
                                        args=[run.pk])).content.decode()

    assert link in findings
    assert link in run_page
