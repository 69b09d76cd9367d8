"""Auto-approval within quota, in theta (requires_approval, auto_approve_within_quota): a
create within every quota that covers it is queued at once and carried out; one beyond a
quota waits for approval, its first event naming the quota; one no quota covers waits for
approval as in any environment that requires it; a stack likewise. A real worker of theta
carries one out in tests/broker/test_quota_auto_approval.py."""

from __future__ import annotations

import pytest

from provisioning.models import Quota, RequestStatus, StackStatus
from provisioning.services import stack_submit
from tests.fixtures.requests import submit
from tests.fixtures.stacks import stack_name

pytestmark = pytest.mark.django_db


def first_event(request) -> str:
    return request.events.order_by("created_at", "id").first().message


def test_a_create_within_quota_is_queued_at_once(requester, team):
    Quota.objects.create(team=team, environment="theta", resource_type="s3_bucket",
                         max_live=2)

    request = submit(requester, "auto", environment="theta")

    assert request.status == RequestStatus.QUEUED
    assert first_event(request) == ("submitted; auto-approved: within team platform's quota "
                                    "for s3_bucket in theta (1 of 2 live)")


def test_a_create_beyond_quota_waits_for_approval_naming_the_quota(requester, team):
    Quota.objects.create(team=team, environment="theta", resource_type="s3_bucket",
                         max_live=1)
    submit(requester, "first", environment="theta")

    beyond = submit(requester, "second", environment="theta")

    assert beyond.status == RequestStatus.PENDING_APPROVAL
    assert first_event(beyond) == (
        "submitted; theta approves within quota only, and this is beyond it: team "
        "platform's quota for s3_bucket in theta is 1 live resources; it has 1 (0 live, 1 "
        "being created)")
    assert beyond.plan is not None  # planned for its approver, as any waiting request


def test_a_create_no_quota_covers_waits_for_approval(requester, team):
    Quota.objects.create(team=team, environment="theta", resource_type="sqs_queue",
                         max_live=5)

    request = submit(requester, "uncovered", environment="theta")

    assert request.status == RequestStatus.PENDING_APPROVAL
    assert first_event(request) == "submitted; theta requires approval"


def test_a_stack_within_quota_starts_at_once(requester, team):
    Quota.objects.create(team=team, environment="theta", resource_type="", max_live=3)
    document = {"environment": "theta", "name": stack_name("auto"), "members": {
        "jobs": {"resource_type": "sqs_queue", "spec": {}},
        "audit": {"resource_type": "s3_bucket", "spec": {}}}}

    stack, _ = stack_submit(user=requester, document=document)

    assert stack.status == StackStatus.RUNNING
    assert stack.events.get().message == (
        "submitted with 2 members; auto-approved: within team platform's quota for any type "
        "in theta (2 of 3 live)")


def test_a_stack_beyond_quota_waits_for_approval(requester, team):
    Quota.objects.create(team=team, environment="theta", resource_type="", max_live=1)
    document = {"environment": "theta", "name": stack_name("big"), "members": {
        "jobs": {"resource_type": "sqs_queue", "spec": {}},
        "audit": {"resource_type": "s3_bucket", "spec": {}}}}

    stack, _ = stack_submit(user=requester, document=document)

    assert stack.status == StackStatus.PENDING_APPROVAL
    assert "members audit do not fit" in stack.events.get().message

