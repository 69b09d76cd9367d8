"""Stacks carried out by real worker processes over the real broker.

Each step's jobs go out as a chord (a chain for one job) whose callback, run by a worker,
advances the stack to its next step: independent members run side by side, dependent
ones after what they refer to, a failure rolls back what was made. A worker killed
mid-stack loses its chord; the sweep still brings the stack to its end.
"""

import json
import signal
import time

import pytest
from django_celery_results.models import TaskResult

from provisioning.models import (
    RequestStatus,
    Resource,
    ResourceStatus,
    Stack,
    StackStatus,
)
from provisioning.services import stack_approve, stack_submit, sweep
from tests.broker.test_provisioning import wait_for
from tests.fixtures.stacks import SETTLED, queue_topic_role, stack_name

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def wait_for_stack(stack, *statuses, timeout=90.0, sweeping=False) -> Stack:
    """Wait until `stack` is in one of `statuses`; with `sweeping`, run the sweep about
    every second meanwhile, as beat would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sweeping:
            sweep()
        stack.refresh_from_db()
        if stack.status in statuses:
            return stack
        time.sleep(1.0 if sweeping else 0.2)
    raise AssertionError(
        f"stack stayed {stack.status} (wanted {statuses}); events: "
        f"{json.dumps(list(stack.events.values_list('message', flat=True)))}; members: "
        f"{list(stack.member_requests.values_list('stack_member', 'action', 'status'))}"
    )


def member_request(stack, key):
    return stack.members.select_related("request__resource").get(key=key).request


def test_a_stack_is_carried_out_by_a_worker_through_its_chord_callbacks_alone(
    alpha_worker, requester, cloud
):
    stack, _ = stack_submit(user=requester, document=queue_topic_role(stack_name("chord")))

    stack = wait_for_stack(stack, *SETTLED)  # no sweep: only the callbacks move it

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    advances = TaskResult.objects.filter(task_name="krp.stack_advance",
                                         task_kwargs__contains=str(stack.pk))
    assert advances.filter(status="SUCCESS").count() >= 2  # the steps after the first
    jobs, events, reader = (member_request(stack, key) for key in ("jobs", "events", "reader"))
    queue_arn, dlq_arn = jobs.outputs["arn"], jobs.outputs["dlq_arn"]
    subscriptions = cloud.client("alpha", "sns").list_subscriptions_by_topic(
        TopicArn=events.outputs["arn"])["Subscriptions"]
    assert [s["Endpoint"] for s in subscriptions] == [queue_arn]
    policy = cloud.client("alpha", "iam").get_role_policy(
        RoleName=reader.physical_name, PolicyName="krp-inline")["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    assert policy["Statement"][0]["Resource"] == [queue_arn, dlq_arn]


def test_a_member_retried_inside_its_chord_still_lets_the_stack_advance(
    alpha_worker, requester, sandbox_faults
):
    sandbox_faults.set_faults(throttle_rate=1.0, services=["s3"])
    stack, _ = stack_submit(user=requester, document=queue_topic_role(stack_name("retry")))
    audit = member_request(stack, "audit")
    wait_for(audit, RequestStatus.QUEUED, RequestStatus.RUNNING,
             condition=lambda r: r.attempts >= 2)  # retried: a new message, same chord
    sandbox_faults.set_faults(throttle_rate=0.0)

    stack = wait_for_stack(stack, *SETTLED)  # no sweep: the chord's callback still comes

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    audit.refresh_from_db()
    assert audit.status == RequestStatus.SUCCEEDED and audit.attempts >= 2


def two_tables(name):
    """A stack of two tables that depend on nothing: one step, both jobs in its chord."""
    table = {"resource_type": "dynamodb_table",
             "spec": {"partition_key": {"name": "id", "type": "S"}}}
    return {"environment": "prod", "name": name,
            "members": {"orders": table, "invoices": table}}


def test_independent_members_run_at_the_same_time_on_two_pool_children(
    requester, operator, start_worker, sandbox_faults
):
    start_worker("prod", name="prod-pair", concurrency=2).wait_for("ready.")
    # A new table stays CREATING for seconds: each member's job waits that long for it.
    sandbox_faults.set_faults(dynamodb_create_delay=3)
    stack, _ = stack_submit(user=requester, document=two_tables(stack_name("pair")))
    stack_approve(stack_id=stack.pk, user=operator)

    stack = wait_for_stack(stack, *SETTLED)

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    orders, invoices = member_request(stack, "orders"), member_request(stack, "invoices")
    # Each started before the other finished: they ran side by side.
    assert orders.started_at < invoices.finished_at
    assert invoices.started_at < orders.finished_at


def test_a_member_starts_once_what_it_needs_is_done_not_when_its_whole_step_is(
    requester, operator, start_worker, sandbox_faults
):
    start_worker("prod", name="prod-eager-dependent", concurrency=2).wait_for("ready.")
    sandbox_faults.set_faults(dynamodb_create_delay=4)  # the table's step runs long
    stack, _ = stack_submit(user=requester, document={
        "environment": "prod", "name": stack_name("early"), "members": {
            "table": {"resource_type": "dynamodb_table",
                      "spec": {"partition_key": {"name": "id", "type": "S"}}},
            "jobs": {"resource_type": "sqs_queue"},
            "events": {"resource_type": "sns_topic",
                       "spec": {"subscriptions": [{"queue": {"ref": "jobs.name"}}]}}}})
    stack_approve(stack_id=stack.pk, user=operator)

    stack = wait_for_stack(stack, *SETTLED)

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    # events needs only jobs: it started while the table (in jobs' step) was still making.
    assert member_request(stack, "events").started_at < member_request(
        stack, "table").finished_at


def cloud_names(cloud, environment):
    """Every queue, topic, role and bucket name in `environment`'s account."""
    sqs, sns = cloud.client(environment, "sqs"), cloud.client(environment, "sns")
    iam, s3 = cloud.client(environment, "iam"), cloud.client(environment, "s3")
    return ([url.rsplit("/", 1)[1] for url in sqs.list_queues().get("QueueUrls", [])]
            + [t["TopicArn"].rsplit(":", 1)[1] for t in sns.list_topics()["Topics"]]
            + [r["RoleName"] for r in iam.list_roles()["Roles"]]
            + [b["Name"] for b in s3.list_buckets()["Buckets"]])


def test_a_worker_killed_mid_stack_still_leaves_one_resource_per_member(
    requester, operator, start_worker, sandbox_faults, cloud
):
    doomed = start_worker("prod", name="prod-stack-doomed")
    doomed.wait_for("ready.")
    sandbox_faults.set_faults(latency=0.5)  # every AWS call is slow: a job takes seconds
    stack, _ = stack_submit(user=requester,
                            document=queue_topic_role(stack_name("killed"), environment="prod"))
    stack_approve(stack_id=stack.pk, user=operator)
    running = None
    deadline = time.monotonic() + 60
    while running is None and time.monotonic() < deadline:
        running = stack.member_requests.filter(status=RequestStatus.RUNNING).first()
        time.sleep(0.1)
    assert running is not None, "no member started"

    doomed.stop(signal.SIGKILL)  # the whole worker: its job and its chord are lost
    sandbox_faults.set_faults(latency=0.0)
    start_worker("prod", name="prod-stack-rescue").wait_for("ready.")
    stack = wait_for_stack(stack, *SETTLED, timeout=150, sweeping=True)

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    running.refresh_from_db()
    # Its second attempt ran on the new worker (taken back by the sweep, or redelivered
    # by RabbitMQ once the dead run's lease lapsed).
    assert (running.status, running.attempts) == (RequestStatus.SUCCEEDED, 2)
    names = cloud_names(cloud, "prod")
    for member in stack.members.select_related("request"):
        physical_name = member.request.physical_name
        assert names.count(physical_name) == 1, (member.key, physical_name)
        assert Resource.objects.filter(environment="prod", name=member.name).count() == 1
    assert Resource.objects.filter(created_by_request__stack=stack,
                                   status=ResourceStatus.ACTIVE).count() == 4


def test_a_member_failing_for_good_rolls_back_the_others_through_the_worker(
    alpha_worker, requester, cloud
):
    document = queue_topic_role(stack_name("undo"))
    # The third member's managed policy does not exist: IAM refuses it, for good.
    document["members"]["reader"]["spec"]["managed_policy_arns"] = [
        "arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"]
    stack, _ = stack_submit(user=requester, document=document)

    stack = wait_for_stack(stack, *SETTLED)  # no sweep: the callbacks roll it back

    assert stack.status == StackStatus.ROLLED_BACK, stack.error_message
    assert "member reader failed" in stack.error_message
    assert member_request(stack, "reader").error["code"] == "NoSuchEntity"
    for member in stack.members.select_related("request__resource", "delete_request"):
        if member.key != "reader":
            assert member.delete_request.status == RequestStatus.SUCCEEDED, member.key
            assert member.request.resource.status == ResourceStatus.DELETED, member.key
    left = [name for name in cloud_names(cloud, "alpha") if stack.name in name]
    assert left == []
