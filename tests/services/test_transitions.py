"""The named transitions: each moves a request only from its own statuses, writes its
bundle of fields and exactly one audit event, and refuses (or, quietly, does nothing)
otherwise."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import RequestEvent, RequestStatus
from provisioning.services import transitions
from provisioning.services.transitions import TransitionRefused
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def running(user, name="orders", *, worker="host:1", lease_seconds=30):
    return transitions.start(submit(user, name), actor="worker", worker_id=worker,
                             task_id="task-1", lease_seconds=lease_seconds, now=timezone.now())


def events(request):
    return RequestEvent.objects.filter(request=request).count()


def test_start_takes_a_queued_request_under_a_lease_with_one_event(requester):
    request = submit(requester)

    started = transitions.start(request, actor="worker", worker_id="host:1", task_id="task-1",
                                lease_seconds=30, now=timezone.now())

    assert started.status == RequestStatus.RUNNING
    assert (started.attempts, started.lease_owner, started.task_id) == (1, "host:1", "task-1")
    assert started.lease_expires_at > timezone.now()
    assert events(request) == 2
    assert started.events.last().message == "attempt 1 on host:1"


def test_a_named_transition_refuses_from_a_wrong_status_and_writes_no_event(requester):
    request = submit(requester)

    with pytest.raises(TransitionRefused, match="is queued; cannot approve it"):
        transitions.approve(request.pk, actor="otto")

    request.refresh_from_db()
    assert request.status == RequestStatus.QUEUED
    assert events(request) == 1


def test_quietly_a_refused_transition_returns_none_and_changes_nothing(requester):
    request = submit(requester)

    assert transitions.reclaim(request.pk, actor="sweep", lease_owner="host:1",
                               lapsed_by=timezone.now(), message="x", quietly=True) is None

    request.refresh_from_db()
    assert request.status == RequestStatus.QUEUED
    assert events(request) == 1


def test_fail_writes_the_error_the_finish_time_and_clears_the_lease(requester):
    request = running(requester)

    failed = transitions.fail(request.pk, actor="worker", lease_owner="host:1",
                              message="AccessDenied: no", error_code="permanent_cloud_error",
                              error_message="no")

    assert failed.status == RequestStatus.FAILED
    assert failed.error == {"code": "permanent_cloud_error", "message": "no"}
    assert failed.finished_at is not None
    assert (failed.lease_owner, failed.lease_expires_at) == ("", None)
    assert events(request) == 3
    assert failed.events.last().message == "AccessDenied: no"


def test_a_run_that_lost_its_lease_cannot_fail_or_finish_the_request(requester):
    request = running(requester, worker="host:2")

    with pytest.raises(TransitionRefused):
        transitions.succeed(request.pk, actor="worker", worker_id="host:1", message="done",
                            outputs={}, now=timezone.now())
    assert transitions.fail(request.pk, actor="worker", lease_owner="host:1", message="x",
                            error_code="x", error_message="x", quietly=True) is None

    request.refresh_from_db()
    assert (request.status, request.lease_owner) == (RequestStatus.RUNNING, "host:2")
    assert events(request) == 2


def test_reclaim_needs_the_lease_to_have_lapsed(requester):
    request = running(requester, lease_seconds=30)

    kept = transitions.reclaim(request.pk, actor="sweep", lease_owner="host:1",
                               lapsed_by=timezone.now(), message="x", quietly=True)
    reclaimed = transitions.reclaim(request.pk, actor="sweep", lease_owner="host:1",
                                    lapsed_by=timezone.now() + timedelta(seconds=60),
                                    message="worker host:1 stopped renewing its lease")

    assert kept is None
    assert reclaimed.status == RequestStatus.QUEUED
    assert reclaimed.task_id != request.task_id
    assert (reclaimed.lease_owner, reclaimed.published_at) == ("", None)
    assert events(request) == 3


def test_retry_resets_the_attempt_budget_and_the_error(requester):
    request = running(requester)
    transitions.fail(request.pk, actor="worker", lease_owner="host:1", message="x",
                     error_code="transient_cloud_error", error_message="x")

    retried = transitions.retry(request.pk, actor="rita", needs_approval=False)

    assert retried.status == RequestStatus.QUEUED
    assert (retried.attempts, retried.error, retried.finished_at) == (0, None, None)
    assert retried.task_id != request.task_id
    assert retried.events.last().message == "retried"
