"""The request state machine through the services: who may move a request, from where to where."""

import pytest
from django.contrib.auth.models import User

from provisioning.errors import Conflict, NotAllowed
from provisioning.models import RequestEvent, RequestStatus
from provisioning.services import (
    request_approve,
    request_cancel,
    request_retry,
)
from provisioning.services.transitions import transition
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def trail(request):
    return list(request.events.values_list("from_status", "to_status", "actor"))


def test_request_for_alpha_is_queued_and_audited(requester):
    request = submit(requester)

    assert request.status == RequestStatus.QUEUED
    assert request.physical_name == "krp-alpha-orders"
    assert request.team.name == "platform"
    assert trail(request) == [("", "queued", "rita")]


def test_request_for_prod_waits_for_approval(requester):
    request = submit(requester, environment="prod")

    assert request.status == RequestStatus.PENDING_APPROVAL
    assert request.queued_at is None


def test_operator_approves_a_prod_request(requester, operator):
    request = submit(requester, environment="prod")

    approved = request_approve(request_id=request.pk, user=operator)

    assert approved.status == RequestStatus.QUEUED
    assert trail(approved)[-1] == ("pending_approval", "queued", "otto")


def test_requester_cannot_approve_own_request_even_as_operator(operator):
    request = submit(operator, environment="prod")

    with pytest.raises(NotAllowed, match="cannot approve their own request"):
        request_approve(request_id=request.pk, user=operator)


def test_approving_needs_the_permission(requester, team):
    request = submit(requester, environment="prod")
    colleague = User.objects.create_user("cole")
    colleague.groups.add(team)

    with pytest.raises(NotAllowed, match="approve_resourcerequest"):
        request_approve(request_id=request.pk, user=colleague)


def test_approving_twice_is_refused_with_the_current_status(requester, operator):
    request = submit(requester, environment="prod")
    request_approve(request_id=request.pk, user=operator)

    with pytest.raises(Conflict, match="is queued; cannot approve it"):
        request_approve(request_id=request.pk, user=operator)
    assert trail(request) == [("", "pending_approval", "rita"),
                              ("pending_approval", "pending_approval", "worker"),  # planned
                              ("pending_approval", "queued", "otto")]


def test_cancel_before_it_runs(requester):
    request = submit(requester)

    cancelled = request_cancel(request_id=request.pk, user=requester, reason="wrong name")

    assert cancelled.status == RequestStatus.CANCELLED
    assert cancelled.events.last().message == "cancelled: wrong name"


def test_cancel_after_it_finished_is_refused(requester):
    request = submit(requester)
    transition(request.pk, from_statuses=["queued"], to="running", actor="worker")
    transition(request.pk, from_statuses=["running"], to="succeeded", actor="worker")

    with pytest.raises(Conflict, match="is succeeded; cannot cancel it"):
        request_cancel(request_id=request.pk, user=requester)


def test_retry_of_a_failed_request_starts_a_fresh_budget_and_run(requester, operator):
    request = submit(requester)
    transition(request.pk, from_statuses=["queued"], to="running", actor="worker", attempts=4)
    transition(request.pk, from_statuses=["running"], to="failed", actor="worker",
               error_code="AccessDenied", error_message="no")

    retried = request_retry(request_id=request.pk, user=operator)

    assert retried.status == RequestStatus.QUEUED
    assert retried.attempts == 0
    assert retried.error is None
    assert retried.task_id != request.task_id


def test_retry_of_a_queued_request_is_refused(requester):
    request = submit(requester)

    with pytest.raises(Conflict, match="is queued; cannot retry it"):
        request_retry(request_id=request.pk, user=requester)


def test_a_transition_outside_the_state_machine_is_a_bug_not_a_state():
    with pytest.raises(ValueError, match="succeeded -> queued"):
        transition("00000000-0000-0000-0000-000000000000", from_statuses=["succeeded"],
                   to="queued", actor="x")


def test_events_are_append_only(requester):
    event = submit(requester).events.get()

    event.message = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()
    assert RequestEvent.objects.get(pk=event.pk).message == "submitted"


def test_cancel_then_retry_of_a_prod_request_does_not_get_around_approval(requester):
    request = submit(requester, environment="prod")
    request_cancel(request_id=request.pk, user=requester)

    retried = request_retry(request_id=request.pk, user=requester)

    assert retried.status == RequestStatus.PENDING_APPROVAL
    assert trail(retried)[-1] == ("cancelled", "pending_approval", "rita")


@pytest.mark.parametrize("service", ["approve", "cancel", "retry"])
def test_a_user_of_another_team_finds_no_such_request(requester, service):
    from django.contrib.auth.models import Group, Permission

    from provisioning.errors import NotFound
    from provisioning.models import ResourceRequest

    outsider = User.objects.create_user("dana")
    outsider.groups.add(Group.objects.create(name="data"))
    outsider.user_permissions.add(Permission.objects.get(codename="approve_resourcerequest"))
    request = submit(requester, environment="prod" if service == "approve" else "alpha")
    if service == "retry":
        transition(request.pk, from_statuses=["queued"], to="cancelled", actor="rita")
    act = {"approve": request_approve, "cancel": request_cancel, "retry": request_retry}[service]

    with pytest.raises(NotFound):
        act(request_id=request.pk, user=User.objects.get(pk=outsider.pk))

    assert ResourceRequest.objects.get(pk=request.pk).status == (
        "pending_approval" if service == "approve"
        else "queued" if service == "cancel" else "cancelled")
