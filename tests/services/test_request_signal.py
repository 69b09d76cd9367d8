"""Every change of a request is announced once it commits, and only then."""

from __future__ import annotations

import pytest
from django.db import transaction

from provisioning.models import RequestStatus
from provisioning.services import request_approve, request_cancel
from provisioning.signals import request_moved
from tests.fixtures.requests import carried_out, submit


@pytest.fixture
def announced():
    seen: list[tuple[str, str, str]] = []

    def receiver(sender, request, from_status, to_status, actor, message, **kwargs):
        seen.append((request.name, from_status, to_status))

    request_moved.connect(receiver, dispatch_uid="test-announced")
    yield seen
    request_moved.disconnect(dispatch_uid="test-announced")


@pytest.mark.django_db(transaction=True)
def test_a_request_run_to_the_end_is_announced_at_each_status(requester, announced, sandbox):
    request = submit(requester, "signal-run")
    carried_out(request)
    assert [(f, t) for name, f, t in announced if name == "signal-run"] == [
        ("", "queued"), ("queued", "running"), ("running", "succeeded"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_waiting_request_is_announced_when_recorded_planned_and_approved(
        requester, operator, announced, sandbox):
    request = submit(requester, "signal-prod", environment="prod")
    assert request.status == RequestStatus.PENDING_APPROVAL
    request_approve(request_id=request.pk, user=operator)
    assert [(f, t) for name, f, t in announced] == [
        ("", "pending_approval"), ("pending_approval", "pending_approval"),
        ("pending_approval", "queued"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_change_that_rolls_back_is_never_announced(requester, announced):
    request = submit(requester, "signal-rollback", environment="prod")
    announced.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        request_cancel(request_id=request.pk, user=requester)
        raise RuntimeError("the caller's transaction fails after the cancel")
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING_APPROVAL
    assert announced == []


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_does_not_stop_the_change(requester, announced):
    def broken(**kwargs):
        raise RuntimeError("a listener is broken")

    request_moved.connect(broken, dispatch_uid="test-broken")
    try:
        request = submit(requester, "signal-broken", environment="prod")
        request_cancel(request_id=request.pk, user=requester)
    finally:
        request_moved.disconnect(dispatch_uid="test-broken")
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    assert ("signal-broken", "pending_approval", "cancelled") in announced
