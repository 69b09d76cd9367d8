"""The sweep: nothing stays queued or running forever."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import RequestStatus, ResourceRequest
from provisioning.services import sweep
from provisioning.services.transitions import transition
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def running_with_lease(request, *, lapsed_seconds, attempts=1):
    now = timezone.now()
    return transition(
        request.pk, from_statuses=["queued"], to="running", actor="worker",
        attempts=attempts, lease_owner="host:4242",
        lease_expires_at=now - timedelta(seconds=lapsed_seconds),
    )


def test_running_request_whose_worker_died_is_queued_again_and_republished(requester, broker):
    request = running_with_lease(submit(requester, "dead-worker"), lapsed_seconds=1)

    report = sweep()

    request.refresh_from_db()
    assert str(request.pk) in report.reclaimed
    assert request.status == RequestStatus.QUEUED
    assert request.lease_owner == ""
    assert request.published_at is not None
    event = request.events.last()
    assert (event.from_status, event.to_status, event.actor) == ("running", "queued", "sweep")
    assert "host:4242 stopped renewing its lease" in event.message


def test_running_request_with_a_live_lease_is_left_alone(requester):
    request = submit(requester, "alive")
    transition(request.pk, from_statuses=["queued"], to="running", actor="worker",
               lease_owner="host:1", lease_expires_at=timezone.now() + timedelta(seconds=30))

    sweep()

    request.refresh_from_db()
    assert request.status == RequestStatus.RUNNING


def test_worker_lost_with_attempts_spent_fails_the_request(requester):
    request = running_with_lease(submit(requester, "spent"), lapsed_seconds=1, attempts=4)

    report = sweep()

    request.refresh_from_db()
    assert str(request.pk) in report.failed
    assert request.status == RequestStatus.FAILED
    assert request.error["code"] == "worker_lost"


def test_request_waiting_past_its_deadline_expires(requester):
    request = submit(requester, "late", deadline=timezone.now() + timedelta(seconds=30))
    ResourceRequest.objects.filter(pk=request.pk).update(
        deadline=timezone.now() - timedelta(seconds=1)
    )

    report = sweep()

    request.refresh_from_db()
    assert str(request.pk) in report.expired
    assert request.status == RequestStatus.EXPIRED
    assert "waited past its deadline" in request.error["message"]


def test_queued_request_that_was_never_published_is_published(requester, broker):
    request = submit(requester, "unsent")
    assert request.published_at is None  # on_commit never ran: the transaction is open

    report = sweep()

    request.refresh_from_db()
    assert report.published == [str(request.pk)]
    assert request.published_at is not None


def test_request_due_beyond_the_publish_horizon_waits_in_the_database(requester, broker):
    later = submit(requester, "later", not_before=timezone.now() + timedelta(hours=2))
    soon = submit(requester, "soon", not_before=timezone.now() + timedelta(seconds=20))

    report = sweep()

    later.refresh_from_db()
    soon.refresh_from_db()
    assert later.published_at is None
    assert soon.published_at is not None
    assert str(later.pk) not in report.published


def test_request_run_before_its_not_before_waits_and_is_published_when_due(requester, broker):
    from provisioning.services import execute_request

    request = submit(requester, "not-yet", not_before=timezone.now() + timedelta(hours=1))

    outcome = execute_request(request_id=str(request.pk), task_id=request.task_id)

    request.refresh_from_db()
    assert outcome.status == "deferred"
    assert (request.status, request.attempts, request.published_at) == ("queued", 0, None)
    ResourceRequest.objects.filter(pk=request.pk).update(not_before=timezone.now())
    assert str(request.pk) in sweep().published
