"""The sweep: nothing stays queued or running forever."""

from datetime import timedelta

import pytest
from dependency_injector import providers
from django.utils import timezone

from krp_project.celery import create_celery_app
from provisioning.models import RequestStatus, ResourceRequest
from provisioning.services import sweep
from provisioning.services.transitions import transition
from tests.fixtures.ports import free_loopback_port
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


def test_queued_request_whose_publish_failed_is_published_by_the_next_sweep(
        requester, broker, container, krp_settings, django_capture_on_commit_callbacks):
    nowhere = krp_settings.model_copy(
        update={"broker_url": f"redis://127.0.0.1:{free_loopback_port()}/0"})
    container.celery_app.override(providers.Object(create_celery_app(nowhere,
                                                                     container=container)))
    broker.empty()
    with django_capture_on_commit_callbacks(execute=True):
        request = submit(requester, "unsent")
    request.refresh_from_db()
    assert request.published_at is None  # the broker was down: the stamp was taken back
    container.celery_app.reset_override()

    report = sweep()

    request.refresh_from_db()
    assert report.published == [str(request.pk)]
    assert request.published_at is not None
    assert broker.message_count("alpha") == 1


def test_request_whose_process_died_before_publishing_is_published_once_stale(
        requester, broker, krp_settings):
    # on_commit never runs here (the test's transaction stays open): as if the process
    # died between the commit and the publish, leaving the stamp it recorded.
    broker.empty()
    request = submit(requester, "orphaned")
    assert request.published_at is not None

    assert str(request.pk) not in sweep().published  # not yet: it may be on its way
    ResourceRequest.objects.filter(pk=request.pk).update(
        published_at=timezone.now() - timedelta(seconds=krp_settings.queued_stale_seconds + 1))
    report = sweep()

    assert report.published == [str(request.pk)]
    assert broker.message_count("alpha") == 1


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


def fenced_context(request, settings, clients):
    """The provisioner's context a worker builds for `request` as start() returned it."""
    from provisioning.resources.base import ProvisionContext
    from provisioning.services.lease import Fence

    return ProvisionContext.build(
        settings=settings, clients=clients, environment=request.environment,
        physical_name=request.physical_name, creating_request_id=str(request.pk),
        team=request.team.name, user_tags={},
        fence=Fence(request_id=request.pk, worker_id=request.lease_owner,
                    generation=request.lease_generation),
    )


def test_a_run_whose_lease_the_sweep_took_back_writes_nothing_to_the_cloud(
    requester, krp_settings, cloud, broker
):
    from provisioning.resources import resource_type
    from provisioning.services import transitions
    from provisioning.services.lease import LeaseLost
    from tests.fixtures.provisioning import unique_name

    bucket = resource_type("s3_bucket")
    request = submit(requester, unique_name("fenced"))
    # A run started 10 s ago with a 6 s lease, then stalled (it never renewed).
    stalled = transitions.start(request, actor="worker", worker_id="host:1",
                                task_id=request.task_id, lease_seconds=6,
                                now=timezone.now() - timedelta(seconds=10))
    stale_ctx = fenced_context(stalled, krp_settings, cloud)

    assert str(request.pk) in sweep().reclaimed
    taken_over = transitions.start(ResourceRequest.objects.get(pk=request.pk), actor="worker",
                                   worker_id="host:2", task_id=request.task_id,
                                   lease_seconds=6, now=timezone.now())
    # Every start and every takeover hands out a new fencing token.
    assert (stalled.lease_generation, taken_over.lease_generation) == (1, 3)

    # The stalled run wakes: it may still look, but its first write is refused unsent.
    assert bucket.describe(stale_ctx) is None
    with pytest.raises(LeaseLost, match="generation 1 on host:1.*before CreateBucket"):
        bucket.create(stale_ctx, bucket.parse_spec({}))
    assert bucket.describe(stale_ctx) is None

    # The run that holds the current generation writes as usual.
    made = bucket.create(fenced_context(taken_over, krp_settings, cloud), bucket.parse_spec({}))
    assert made.tags["krp:request-id"] == str(request.pk)


def test_the_same_worker_taking_a_request_over_again_still_fences_its_earlier_run(
    requester, krp_settings, cloud, broker
):
    # Same worker id (a thread pool, or a reused pid): only the generation tells the runs apart.
    from provisioning.resources import resource_type
    from provisioning.services import transitions
    from provisioning.services.lease import LeaseLost
    from tests.fixtures.provisioning import unique_name

    bucket = resource_type("s3_bucket")
    request = submit(requester, unique_name("fenced"))
    first = transitions.start(request, actor="worker", worker_id="host:1",
                              task_id=request.task_id, lease_seconds=6,
                              now=timezone.now() - timedelta(seconds=10))
    transitions.start(first, actor="worker", worker_id="host:1", task_id=request.task_id,
                      lease_seconds=6, now=timezone.now())

    with pytest.raises(LeaseLost):
        bucket.create(fenced_context(first, krp_settings, cloud), bucket.parse_spec({}))
    assert bucket.describe(fenced_context(first, krp_settings, cloud)) is None
