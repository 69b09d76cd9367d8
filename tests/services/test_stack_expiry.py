"""A stack's time to live: its document's ttl or expires_at checked with a request's rules,
its team warned once at each threshold, then the stack deleted as a whole by krp-expiry
(through approval where the environment requires it); its members have no expiry of their
own."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.errors import InvalidRequest
from provisioning.models import Delivery, Resource, Stack, StackAction, StackStatus
from provisioning.services import stack_approve, stack_submit
from provisioning.services.expiry import SYSTEM_USER, expiry_sweep
from provisioning.services.lifetimes import expiry_fields
from tests.fixtures.receivers import register_channel
from tests.fixtures.stacks import drive, stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

HOOK = "http://127.0.0.1:9/krp"  # loopback: nothing may reach the internet


def bucket_stack(environment: str = "zeta", **lifetime) -> dict:
    return {"environment": environment, "name": stack_name("ttl"),
            "members": {"logs": {"resource_type": "s3_bucket", "spec": {}}}, **lifetime}


def expiring(user, *, expires_in: timedelta, environment: str = "zeta") -> Stack:
    """A stack of `user`'s that succeeded and expires `expires_in` from now."""
    stack = drive(stack_submit(user=user, document=bucket_stack(environment, ttl="1d"))[0])
    assert stack.status == StackStatus.SUCCEEDED
    Stack.objects.filter(pk=stack.pk).update(**expiry_fields(
        environment=environment, expires_at=timezone.now() + expires_in))
    stack.refresh_from_db()
    return stack


def refusal(user, document) -> dict[str, list[str]]:
    with pytest.raises(InvalidRequest) as refused:
        stack_submit(user=user, document=document)
    return refused.value.fields


@pytest.mark.parametrize(("lifetime", "fields"), [
    ({}, {"ttl": ["zeta requires a ttl or expires_at (at most 7d)"]}),
    ({"ttl": "8d"}, {"ttl": ["at most 7d in zeta"]}),
    ({"ttl": "soon"}, {"ttl": ["'soon' is not a duration such as 30s, 15m, 2h, 7d, 2w or "
                               "1d12h"]}),
    ({"ttl": "1d", "expires_at": "2030-01-01T00:00:00Z"},
     {"ttl": ["give ttl or expires_at, not both"],
      "expires_at": ["give ttl or expires_at, not both"]}),
    ({"expires_at": "2020-01-01T00:00:00Z"}, {"expires_at": ["must be in the future"]}),
    ({"expires_at": "tomorrow"}, {"expires_at": [
        "must be an ISO 8601 time with a zone (e.g. 2026-12-01T09:00:00Z)"]}),
])
def test_a_stack_lifetime_is_checked_as_a_requests_with_the_documents_other_problems(
        requester, lifetime, fields):
    document = bucket_stack(**lifetime)
    document["members"]["bad"] = {"resource_type": "nope"}

    problems = refusal(requester, document)

    assert {k: v for k, v in problems.items() if k in ("ttl", "expires_at")} == fields
    assert "members.bad.resource_type" in problems  # reported with the rest, at once


def test_a_stack_ttl_counts_from_when_it_succeeds_and_its_members_have_no_expiry(requester):
    stack, _ = stack_submit(user=requester, document=bucket_stack(ttl="2d"))
    assert (stack.ttl, stack.expires_at, stack.expiry_check_at) == (timedelta(days=2), None,
                                                                   None)

    stack = drive(stack)

    assert timezone.now() < stack.expires_at <= timezone.now() + timedelta(days=2)
    assert stack.expiry_check_at == stack.expires_at - timedelta(seconds=3)  # zeta warns 3s
    (resource,) = Resource.objects.filter(created_by_request__stack=stack)
    assert (resource.expires_at, resource.expiry_check_at) == (None, None)


def test_an_expires_at_is_scheduled_when_the_stack_is_recorded(requester):
    moment = (timezone.now() + timedelta(days=1)).replace(microsecond=0)

    stack, _ = stack_submit(user=requester,
                            document=bucket_stack(expires_at=moment.isoformat()))

    assert (stack.ttl, stack.expires_at) == (None, moment)
    assert stack.expiry_check_at == moment - timedelta(seconds=3)


def test_a_stacks_team_is_warned_once_per_threshold_with_an_event_and_a_delivery(
        requester, team, broker):
    register_channel(team, HOOK, ["expiring"])
    stack = expiring(requester, expires_in=timedelta(seconds=2))

    first = expiry_sweep(now=timezone.now())
    again = expiry_sweep(now=timezone.now())

    stack.refresh_from_db()
    assert (first.stacks_warned, again.stacks_warned) == ([str(stack.pk)], [])
    assert [w["before"] for w in stack.expiry_warnings] == ["3s"]
    (event,) = stack.events.filter(to_status="warned")
    assert (event.actor, event.from_status) == ("sweep", "succeeded")
    assert "extend it to keep it and its members" in event.message
    (delivery,) = Delivery.objects.filter(event="expiring")
    assert delivery.payload["stack"]["id"] == str(stack.pk)
    assert delivery.payload["stack"]["members"] == [
        {"key": "logs", "resource_type": "s3_bucket", "name": f"{stack.name}-logs"}]
    assert delivery.payload["details"]["warning"] == "3s"
    assert stack.status == StackStatus.SUCCEEDED  # a warning deletes nothing


def test_an_expired_stack_is_deleted_once_as_krp_expiry_on_behalf_of_its_team(requester):
    stack = expiring(requester, expires_in=timedelta(seconds=-1))

    report = expiry_sweep(now=timezone.now())
    # Even a sweep that looks again at the same expiry asks for nothing more.
    Stack.objects.filter(pk=stack.pk).update(expiry_check_at=timezone.now())
    expiry_sweep(now=timezone.now())

    stack.refresh_from_db()
    assert report.stacks_deleting == [str(stack.pk)]
    assert (stack.status, stack.action) == (StackStatus.DELETING, StackAction.DELETE)
    (asked,) = stack.events.filter(actor=SYSTEM_USER)
    assert asked.message.startswith(f"expired: stack zeta/{stack.name} reached its expiry")
    assert drive(stack).status == StackStatus.DELETED
    assert not Resource.objects.filter(created_by_request__stack=stack,
                                       status="active").exists()


def test_an_expired_stack_waits_for_approval_where_the_environment_requires_it(
        requester, operator):
    stack = drive(stack_approve(stack_id=stack_submit(
        user=requester, document=bucket_stack("prod"))[0].pk, user=operator))
    Stack.objects.filter(pk=stack.pk).update(**expiry_fields(
        environment="prod", expires_at=timezone.now() - timedelta(seconds=1)))

    expiry_sweep(now=timezone.now())

    stack.refresh_from_db()
    assert (stack.status, stack.action) == (StackStatus.PENDING_APPROVAL, StackAction.DELETE)
    assert stack.events.get(actor=SYSTEM_USER).message.endswith(
        "deletion asked; waits for approval")
    assert drive(stack_approve(stack_id=stack.pk, user=operator)).status == (
        StackStatus.DELETED)


def test_a_stack_that_cannot_be_deleted_yet_is_held_with_the_reason_and_tried_again(
        requester):
    stack, _ = stack_submit(user=requester, document=bucket_stack(ttl="1d"))
    Stack.objects.filter(pk=stack.pk).update(**expiry_fields(
        environment="zeta", expires_at=timezone.now() - timedelta(seconds=1)))

    held = expiry_sweep(now=timezone.now())
    expiry_sweep(now=timezone.now())

    stack.refresh_from_db()
    assert held.stacks_held == [str(stack.pk)]
    assert stack.expiry_problem.startswith(f"stack_state: stack {stack.pk} is running")
    assert stack.events.filter(to_status="expiry_refused").count() == 1  # not each sweep
    drive(stack)
    assert expiry_sweep(now=timezone.now()).stacks_deleting == [str(stack.pk)]
