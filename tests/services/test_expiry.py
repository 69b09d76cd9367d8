"""Expiry, as the sweep's step runs it: owners warned once at each threshold, then one
ordinary delete request filed by krp-expiry (through approval where the environment
requires it); a resource with a request in flight is left and tried again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.errors import Conflict
from provisioning.models import RequestAction, RequestStatus, Resource, ResourceRequest
from provisioning.services import inventory, request_cancel, sweep
from provisioning.services.expiry import SYSTEM_USER, expiry_sweep, resource_extend
from provisioning.services.lifetimes import expiry_fields
from tests.fixtures.inventory import resource_in
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def expiring(user, name: str, *, expires_in: timedelta, environment: str = "alpha"):
    resource = resource_in(user, name, environment=environment)
    Resource.objects.filter(pk=resource.pk).update(**expiry_fields(
        environment=environment, expires_at=timezone.now() + expires_in))
    resource.refresh_from_db()
    return resource


def expiry_deletes(resource):
    return ResourceRequest.objects.filter(resource=resource, action=RequestAction.DELETE)


def test_owners_are_warned_once_at_each_default_threshold(requester):
    resource = expiring(requester, "ledger", expires_in=timedelta(hours=3))
    start = timezone.now()

    for later in (timedelta(0), timedelta(seconds=1), timedelta(hours=1, seconds=1),
                  timedelta(hours=1, minutes=30), timedelta(hours=2, minutes=31),
                  timedelta(hours=2, minutes=40)):
        expiry_sweep(now=start + later)

    resource.refresh_from_db()
    assert [w["before"] for w in resource.expiry_warnings] == ["2d", "2h", "30m"]
    assert [e.to_status for e in resource.events.all()] == ["warned"] * 3
    assert not expiry_deletes(resource).exists()


def test_a_late_sweep_gives_one_warning_for_the_thresholds_it_passed(requester):
    resource = expiring(requester, "ledger", expires_in=timedelta(minutes=10))

    report = sweep()

    resource.refresh_from_db()
    assert report.expiry_warned == [str(resource.pk)]
    assert [w["before"] for w in resource.expiry_warnings] == ["30m"]


def test_expired_resource_gets_one_ordinary_delete_request_from_krp_expiry(requester, team):
    resource = expiring(requester, "ledger", expires_in=timedelta(seconds=-1))

    report = sweep()
    # Even a sweep that looks again at the same expiry files nothing more.
    Resource.objects.filter(pk=resource.pk).update(expiry_check_at=timezone.now())
    sweep()

    (delete,) = expiry_deletes(resource)
    assert report.expiry_deletes == [str(delete.pk)]
    assert (delete.status, delete.requested_by.username, delete.team) == (
        RequestStatus.QUEUED, SYSTEM_USER, team)
    assert not delete.requested_by.is_active and not delete.requested_by.has_usable_password()
    event = delete.events.get()
    assert event.actor == SYSTEM_USER
    assert event.message.startswith("expired: s3_bucket alpha/ledger reached its expiry")
    assert "filed by the expiry sweep; submitted" in event.message


def test_expiry_delete_waits_for_approval_where_the_environment_requires_it(requester):
    resource = expiring(requester, "ledger", environment="prod",
                        expires_in=timedelta(seconds=-1))

    sweep()

    (delete,) = expiry_deletes(resource)
    assert delete.status == RequestStatus.PENDING_APPROVAL


def test_expired_resource_with_a_request_in_flight_is_left_and_tried_again(requester):
    resource = expiring(requester, "ledger", expires_in=timedelta(seconds=-1))
    update = submit(requester, "ledger", action=RequestAction.UPDATE,
                    spec={"versioning": True})

    held = sweep()

    resource.refresh_from_db()
    assert held.expiry_held == [str(resource.pk)] and not expiry_deletes(resource).exists()
    assert resource.expiry_problem.startswith("request_in_flight:")
    assert resource.events.get().to_status == "expiry_refused"

    request_cancel(request_id=update.pk, user=requester)
    sweep()

    assert expiry_deletes(resource).count() == 1


def test_an_expired_resource_whose_delete_waits_for_approval_is_not_extended(requester):
    resource = expiring(requester, "ledger", environment="prod",
                        expires_in=timedelta(seconds=-1))
    sweep()

    with pytest.raises(Conflict) as refused:
        resource_extend(resource_id=resource.pk, user=requester, ttl="1d")

    assert refused.value.code == "delete_in_flight"


@pytest.mark.parametrize(("fields", "kept"), [({}, True), ({"ttl": "2d"}, False)])
def test_an_update_keeps_the_expiry_unless_it_asks_for_a_new_one(requester, fields, kept):
    resource = expiring(requester, "ledger", expires_in=timedelta(hours=1))
    update = submit(requester, "ledger", action=RequestAction.UPDATE,
                    spec={"versioning": True}, **fields)

    inventory.record_success(request=update, tags={}, now=timezone.now(),
                             result={"physical_id": resource.physical_id, "arn": resource.arn})

    after = Resource.objects.get(pk=resource.pk).expires_at
    assert (after == resource.expires_at) is kept
    assert after > timezone.now() + timedelta(days=1) or kept
