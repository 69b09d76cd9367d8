"""A stack member held up by throttling is retried inside its step's canvas, and the
stack goes on when the weather clears: the chain that carries the step's callback survives
the member's retries, with no sweep to help."""

import time

import pytest

from provisioning.models import RequestStatus, Stack, StackStatus
from provisioning.services import stack_approve, stack_submit
from tests.fixtures.stacks import SETTLED, stack_name

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def wait_for_stack(stack: Stack, *, timeout: float = 120.0, condition=None) -> Stack:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.refresh_from_db()
        if condition(stack) if condition else stack.status in SETTLED:
            return stack
        time.sleep(0.3)
    members = {r.stack_member: (r.status, r.attempts, list(r.events.values_list(
        "message", flat=True))) for r in stack.member_requests.all()}
    raise AssertionError(f"stack {stack.pk} stayed {stack.status}: "
                         f"{list(stack.events.values_list('message', flat=True))}; "
                         f"members {members}")


def test_a_throttled_member_is_retried_in_its_step_and_the_stack_then_succeeds(
    requester, operator, start_worker, sandbox_faults, cloud
):
    # prod: no session worker consumes its queue, and no beat runs: only the canvas moves
    # this stack on.
    worker = start_worker("prod", name="prod-stack-weather")
    worker.wait_for("ready.")
    sandbox_faults.set_faults(throttle_rate=1.0, services=["s3"])
    stack, _ = stack_submit(user=requester, document={
        "environment": "prod", "name": stack_name("wx"), "members": {
            "store": {"resource_type": "s3_bucket"},
            "reader": {"resource_type": "iam_role", "spec": {
                "trusted_service": "lambda.amazonaws.com",
                "inline_policy": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": ["s3:GetObject"],
                    "Resource": {"ref": "store.arn"}}]}}}}})
    stack_approve(stack_id=stack.pk, user=operator)

    store = stack.members.get(key="store")
    wait_for_stack(stack, condition=lambda s: s.members.get(key="store").request is not None
                   and s.members.get(key="store").request.attempts >= 3)
    sandbox_faults.set_faults(throttle_rate=0.0)

    stack = wait_for_stack(stack)
    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    store.refresh_from_db()
    assert store.request.status == RequestStatus.SUCCEEDED and store.request.attempts >= 3
    # Every retry went back to prod's queue and this worker (on RabbitMQ a retry once
    # landed on the control queue, where a worker of another environment would take it).
    assert worker.log().count(f"[{store.request.task_id}] received") >= 3
    reader = stack.members.get(key="reader").request
    assert reader.spec["inline_policy"]["Statement"][0]["Resource"] == store.request.outputs[
        "arn"]
