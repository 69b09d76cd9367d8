"""Stacks through the services against the sandbox: members in dependency order with
their references resolved, a failure that rolls back what was made, approval, deletion
dependents first, retries, and the sweep for a stack whose chord was lost."""

import json

import pytest

from provisioning.errors import Conflict, InvalidRequest, NotAllowed
from provisioning.models import (
    RequestAction,
    RequestStatus,
    Resource,
    ResourceStatus,
    StackMember,
    StackStatus,
)
from provisioning.services import (
    request_submit,
    stack_approve,
    stack_cancel,
    stack_delete,
    stack_retry,
    stack_submit,
    sweep,
)
from tests.fixtures.stacks import drive, queue_topic_role, stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]


def member(stack, key) -> StackMember:
    return stack.members.select_related("request__resource").get(key=key)


def test_members_are_created_in_dependency_order_and_references_hold_in_the_cloud(
    requester, cloud
):
    name = stack_name("orders")
    stack, created = stack_submit(user=requester, document=queue_topic_role(name))
    assert created and stack.status == StackStatus.RUNNING
    # The first step: what depends on nothing.
    first = {m.key for m in stack.members.all() if m.request_id}
    assert first == {"jobs", "audit"}

    stack = drive(stack)

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    jobs, events, reader = member(stack, "jobs"), member(stack, "events"), member(stack, "reader")
    assert jobs.name == f"{name}-jobs"
    assert events.request.spec["subscriptions"][0]["queue"] == jobs.name
    queue_arn, dlq_arn = jobs.request.outputs["arn"], jobs.request.outputs["dlq_arn"]
    statement = reader.request.spec["inline_policy"]["Statement"][0]
    assert statement["Resource"] == [queue_arn, dlq_arn]
    # In the cloud: the topic delivers to the queue, the role may read both queues.
    sns = cloud.client("alpha", "sns")
    subscriptions = sns.list_subscriptions_by_topic(
        TopicArn=events.request.outputs["arn"])["Subscriptions"]
    assert [s["Endpoint"] for s in subscriptions] == [queue_arn]
    policy = cloud.client("alpha", "iam").get_role_policy(
        RoleName=reader.request.physical_name, PolicyName="krp-inline")["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    assert policy["Statement"][0]["Resource"] == [queue_arn, dlq_arn]
    assert {r.stack_member for r in stack.member_requests.all()} == {
        "jobs", "events", "reader", "audit"}


def test_a_member_that_fails_for_good_rolls_back_what_was_created(requester, cloud):
    document = queue_topic_role(stack_name("broken"))
    # The role's managed policy does not exist: IAM refuses it (NoSuchEntity), for good.
    document["members"]["reader"]["spec"]["managed_policy_arns"] = [
        "arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"]
    stack, _ = stack_submit(user=requester, document=document)

    stack = drive(stack)

    assert stack.status == StackStatus.ROLLED_BACK, stack.error_message
    assert stack.error_code == "member_failed"
    assert "member reader failed" in stack.error_message
    reader = member(stack, "reader")
    assert reader.request.status == RequestStatus.FAILED
    for key in ("jobs", "events", "audit"):
        made = member(stack, key)
        assert made.request.status == RequestStatus.SUCCEEDED
        assert made.delete_request.status == RequestStatus.SUCCEEDED
        assert made.request.resource.status == ResourceStatus.DELETED
    # Nothing of it is left in the cloud.
    queues = cloud.client("alpha", "sqs").list_queues(QueueNamePrefix=f"krp-alpha-{stack.name}")
    assert queues.get("QueueUrls", []) == []
    topics = cloud.client("alpha", "sns").list_topics()["Topics"]
    assert not [t for t in topics if stack.name in t["TopicArn"]]
    buckets = cloud.client("alpha", "s3").list_buckets()["Buckets"]
    assert not [b for b in buckets if stack.name in b["Name"]]


def test_the_events_topic_is_deleted_before_the_queue_it_feeds(requester):
    stack, _ = stack_submit(user=requester, document=queue_topic_role(stack_name("gone")))
    stack = drive(stack)
    assert stack.status == StackStatus.SUCCEEDED

    stack = drive(stack_delete(stack_id=stack.pk, user=requester))

    assert stack.status == StackStatus.DELETED
    finished = {m.key: m.delete_request.finished_at for m in stack.members.select_related(
        "delete_request")}
    assert finished["events"] < finished["jobs"] and finished["reader"] < finished["jobs"]
    assert not Resource.objects.filter(
        created_by_request__stack=stack).exclude(status=ResourceStatus.DELETED).exists()


def test_rollback_false_leaves_what_was_made_and_says_so(requester):
    document = queue_topic_role(stack_name("keep"), rollback=False)
    document["members"]["reader"]["spec"]["managed_policy_arns"] = [
        "arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"]
    stack = drive(stack_submit(user=requester, document=document)[0])

    assert stack.status == StackStatus.FAILED
    assert "remains: " in stack.error_message and "jobs (sqs_queue" in stack.error_message
    assert member(stack, "jobs").request.resource.status == ResourceStatus.ACTIVE


def test_retry_after_a_fix_creates_only_what_is_missing(requester):
    document = queue_topic_role(stack_name("again"), rollback=False)
    document["members"]["reader"]["spec"]["managed_policy_arns"] = [
        "arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"]
    stack = drive(stack_submit(user=requester, document=document)[0])
    jobs_request = member(stack, "jobs").request_id
    StackMember.objects.filter(stack=stack, key="reader").update(
        spec={**member(stack, "reader").spec, "managed_policy_arns": []})

    stack = drive(stack_retry(stack_id=stack.pk, user=requester))

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    assert member(stack, "jobs").request_id == jobs_request


def test_a_stack_in_an_environment_that_needs_approval_waits_and_runs_once_approved(
    requester, operator
):
    stack, _ = stack_submit(user=requester, document=queue_topic_role(
        stack_name("prod"), environment="prod"))
    assert stack.status == StackStatus.PENDING_APPROVAL
    assert not stack.member_requests.exists()
    with pytest.raises(NotAllowed):
        stack_approve(stack_id=stack.pk, user=requester)

    stack = drive(stack_approve(stack_id=stack.pk, user=operator))

    assert stack.status == StackStatus.SUCCEEDED
    assert stack.approved_by == operator
    # The members needed no approval of their own: the stack's was theirs.
    assert not stack.member_requests.filter(
        events__to_status=RequestStatus.PENDING_APPROVAL).exists()


def test_cancel_withdraws_a_waiting_stack(requester):
    stack, _ = stack_submit(user=requester, document=queue_topic_role(
        stack_name("nope"), environment="prod"))
    stack = stack_cancel(stack_id=stack.pk, user=requester)
    assert stack.status == StackStatus.CANCELLED
    # Its name is free again.
    assert stack_submit(user=requester, document=queue_topic_role(
        stack.name, environment="prod"))[1]


def test_a_member_cannot_be_deleted_alone_while_another_member_refers_to_it(requester):
    stack = drive(stack_submit(user=requester, document=queue_topic_role(
        stack_name("held")))[0])
    jobs = member(stack, "jobs")

    with pytest.raises(Conflict) as refused:
        request_submit(user=requester, environment="alpha", resource_type="sqs_queue",
                       name=jobs.name, action=RequestAction.DELETE)

    assert refused.value.code == "has_dependents"
    assert f"iam_role alpha/{stack.name}-reader" in refused.value.message
    assert f"sns_topic alpha/{stack.name}-events" in refused.value.message


def test_the_same_name_twice_is_a_conflict_and_the_same_key_a_replay(requester):
    document = queue_topic_role(stack_name("twice"))
    first, _ = stack_submit(user=requester, document=document, idempotency_key="k-1")
    again, created = stack_submit(user=requester, document=document, idempotency_key="k-1")
    assert (again.pk, created) == (first.pk, False)
    with pytest.raises(Conflict) as refused:
        stack_submit(user=requester, document=document)
    assert refused.value.code in ("already_exists", "name_taken")


def test_a_stack_whose_chord_was_lost_is_moved_on_by_the_sweep(requester):
    # Nothing publishes in a test transaction: as if the step's chord never went out. Its
    # members' requests are run here; only the sweep comes back to the stack.
    stack, _ = stack_submit(user=requester, document={
        "environment": "alpha", "name": stack_name("lost"),
        "members": {"one": {"resource_type": "s3_bucket"}}})
    request = stack.member_requests.get()
    from provisioning.services import execute_request

    execute_request(request_id=str(request.pk), task_id=request.task_id)

    report = sweep()

    assert str(stack.pk) in report.stacks
    stack.refresh_from_db()
    assert stack.status == StackStatus.SUCCEEDED


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: d["members"]["events"]["spec"]["subscriptions"][0].update(
        queue={"ref": "nobody.name"}),
     "members.events.spec.subscriptions[0].queue", "'nobody', which is not a member"),
    (lambda d: d["members"]["reader"]["spec"]["inline_policy"]["Statement"][0].update(
        Resource={"ref": "jobs.colour"}),
     "members.reader.spec.inline_policy.Statement[0].Resource", "has no output 'colour'"),
    (lambda d: d["members"]["jobs"]["spec"].update(delay_seconds={"ref": "events.arn"}),
     "members.jobs", "depends on itself: jobs -> events -> jobs"),
    (lambda d: d["members"]["audit"].update(spec={"versioning": "yes"}),
     "members.audit.spec.versioning", "valid boolean"),
    (lambda d: d["members"]["audit"].update(resource_type="ec2_instance"),
     "members.audit.resource_type", "not a resource type"),
    (lambda d: d["members"]["jobs"]["spec"].update(dead_letter_queue={"ref": "x"}),
     "members.jobs.spec.dead_letter_queue", "a reference is"),
])
def test_a_bad_document_is_refused_naming_the_member_and_path(requester, change, field, words):
    document = queue_topic_role(stack_name("bad"))
    change(document)

    with pytest.raises(InvalidRequest) as refused:
        stack_submit(user=requester, document=document)

    problems = refused.value.fields
    assert field in problems, problems
    assert any(words in problem for problem in problems[field]), problems[field]


def test_every_problem_of_every_member_is_named_at_once(requester):
    document = queue_topic_role(stack_name("many"))
    document["members"]["audit"]["spec"] = {"versioning": "yes"}
    document["members"]["events"]["spec"]["subscriptions"][0]["queue"] = {"ref": "no.name"}
    document["members"]["reader"]["resource_type"] = "nothing"

    with pytest.raises(InvalidRequest) as refused:
        stack_submit(user=requester, document=document)

    assert set(refused.value.fields) >= {
        "members.audit.spec.versioning", "members.events.spec.subscriptions[0].queue",
        "members.reader.resource_type"}


def test_a_member_name_held_by_a_live_resource_is_refused_at_submit(requester):
    name = stack_name("taken")
    request_submit(user=requester, environment="alpha", resource_type="s3_bucket",
                   name=f"{name}-audit")

    with pytest.raises(InvalidRequest) as refused:
        stack_submit(user=requester, document=queue_topic_role(name))

    assert refused.value.fields == {
        "members.audit.name": [f"s3_bucket alpha/{name}-audit has a request in flight"]}


def test_a_deletion_that_failed_for_good_is_tried_again_by_retry(requester, sandbox_faults):
    stack = drive(stack_submit(user=requester, document={
        "environment": "alpha", "name": stack_name("stuck"),
        "members": {"store": {"resource_type": "s3_bucket"}}})[0])
    sandbox_faults.set_faults(deny_actions=["DeleteBucket"])

    stack = drive(stack_delete(stack_id=stack.pk, user=requester))

    assert (stack.status, stack.error_code) == (StackStatus.FAILED, "delete_failed")
    assert "remains: store (s3_bucket" in stack.error_message
    sandbox_faults.set_faults(deny_actions=[])

    stack = drive(stack_retry(stack_id=stack.pk, user=requester))

    assert stack.status == StackStatus.DELETED, stack.error_message
    assert member(stack, "store").request.resource.status == ResourceStatus.DELETED
