"""Which channels hear of what: a request's moves, reconcile's drift, a resource expiring.

Each event becomes one Delivery per enabled channel of the owning team that wants it, and
nothing for other teams, disabled channels or unwanted events.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from provisioning.models import (
    Delivery,
    Finding,
    FindingKind,
    NotificationChannel,
    ReconcileRun,
    RequestStatus,
)
from provisioning.services.expiry import warn
from provisioning.services.notifications import (
    events_of_move,
    notify_drift,
    notify_resource,
    on_request_moved,
)
from tests.admin.conftest import succeed
from tests.fixtures.receivers import register_channel
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

HOOK = "http://127.0.0.1:9/krp"  # loopback: nothing may reach the internet


@pytest.fixture(autouse=True)
def _broker(broker):
    """Deliveries are published to the control queue of the test broker."""


def deliveries() -> list[tuple[str, str]]:
    return sorted(Delivery.objects.values_list("channel__target", "event"))


@pytest.mark.parametrize(("moved", "events"), [
    (("", "queued"), ["submitted"]),
    (("", "pending_approval"), ["submitted", "pending_approval"]),
    (("failed", "pending_approval"), ["pending_approval"]),
    (("pending_approval", "pending_approval"), []),  # its plan recorded: heard already
    (("queued", "running"), []),
    (("running", "succeeded"), ["succeeded"]),
    (("running", "failed"), ["failed"]),
    (("queued", "cancelled"), []),
])
def test_each_move_of_a_request_makes_its_events(moved, events):
    assert events_of_move(*moved) == events


def test_a_submission_reaches_only_its_teams_enabled_channels_that_want_it(
        requester, team, django_capture_on_commit_callbacks):
    register_channel(team, HOOK, ["submitted", "succeeded"])
    register_channel(team, "ops@example.org", ["submitted"], kind="email")
    register_channel(team, "http://127.0.0.1:9/failures", ["failed"])
    off, _ = register_channel(team, "http://127.0.0.1:9/off", ["submitted"])
    NotificationChannel.objects.filter(pk=off.pk).update(enabled=False)
    register_channel(Group.objects.create(name="data"), "http://127.0.0.1:9/data",
                     ["submitted"])

    with django_capture_on_commit_callbacks(execute=True):
        request = submit(requester)

    assert deliveries() == [(HOOK, "submitted"), ("ops@example.org", "submitted")]
    payload = Delivery.objects.get(channel__target=HOOK).payload
    assert payload["request"]["id"] == str(request.pk)
    assert payload["request"]["url"] == f"/api/v1/requests/{request.pk}/"
    assert payload["team"] == "platform"
    assert payload["delivery"] == str(Delivery.objects.get(channel__target=HOOK).pk)


def test_a_request_that_waits_for_approval_is_submitted_and_pending_approval(
        requester, team, django_capture_on_commit_callbacks):
    register_channel(team, HOOK, ["submitted", "pending_approval"])

    with django_capture_on_commit_callbacks(execute=True):
        submit(requester, environment="prod")

    assert deliveries() == [(HOOK, "pending_approval"), (HOOK, "submitted")]


def test_a_submission_of_a_team_without_channels_costs_no_query(
        requester, team, django_assert_num_queries):
    request = submit(requester)  # its team as the submission read it

    with django_assert_num_queries(0):
        on_request_moved(None, request=request, from_status="",
                         to_status=RequestStatus.QUEUED)


def test_a_resource_expiring_reaches_its_teams_channels(requester, team):
    register_channel(team, HOOK, ["expiring"])
    resource = succeed(submit(requester))

    notify_resource(event="expiring", resource=resource,
                    details={"expires_at": "2026-12-01T00:00:00+00:00"})

    payload = Delivery.objects.get().payload
    assert payload["event"] == "expiring"
    assert payload["resource"]["id"] == str(resource.pk)
    assert payload["details"] == {"expires_at": "2026-12-01T00:00:00+00:00"}


def test_a_reconcile_run_tells_each_team_once_of_its_drifted_and_missing_resources(
        requester, team):
    register_channel(team, HOOK, ["drift_found"])
    drifted = succeed(submit(requester, "orders"))
    missing = succeed(submit(requester, "invoices"))
    run = ReconcileRun.objects.create(environment="alpha", triggered_by="test",
                                      status=ReconcileRun.Status.FINDINGS)
    for resource, kind in ((drifted, FindingKind.DRIFTED), (missing, FindingKind.MISSING)):
        Finding.objects.create(run=run, kind=kind, resource=resource,
                               resource_type=resource.resource_type, arn=resource.arn)
    Finding.objects.create(run=run, kind=FindingKind.ORPHAN, resource_type="s3_bucket",
                           arn="arn:aws:s3:::nobodys")

    notify_drift(run)

    delivery = Delivery.objects.get()
    assert delivery.event == "drift_found"
    assert [(f["kind"], f["resource"]["name"]) for f in delivery.payload["findings"]] == [
        ("missing", "invoices"), ("drifted", "orders")]
    assert delivery.payload["findings_total"] == 2


def test_an_expiry_warning_reaches_its_teams_channels_as_expiring(requester, team):
    register_channel(team, HOOK, ["expiring"])
    resource = succeed(submit(requester))
    now = timezone.now()
    resource.expires_at = now + timedelta(hours=2)
    resource.save(update_fields=["expires_at"])

    warn(resource, left=timedelta(hours=2), before=timedelta(hours=2), now=now)

    payload = Delivery.objects.get(event="expiring").payload
    assert payload["resource"]["expires_at"] == resource.expires_at.isoformat()
    assert payload["details"]["expires_at"] == resource.expires_at.isoformat()
