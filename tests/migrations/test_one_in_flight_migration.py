"""Migration 0004_one_in_flight_request_per_resource on a database that already holds
several requests in flight on one resource (accepted by the race the constraint closes):
it fails the extras, keeping the running one or else the oldest, each with an audit event,
and only then adds the constraint.

The database is taken back to 0003 with Django's migration executor, filled through the
models as they were at 0003, and migrated forward again; it is left migrated forward.
"""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from provisioning.models import RequestEvent, RequestStatus, ResourceRequest

pytestmark = pytest.mark.django_db(transaction=True)

APP = "provisioning"
BEFORE = [(APP, "0003_create_issued_at")]
WHY = "failed by migration 0004: another request on this resource was already in flight"


def migrate_forward() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([key for key in executor.loader.graph.leaf_nodes() if key[0] == APP])


@pytest.fixture
def apps_at_0003():
    """The models as they were at 0003, on a database migrated back to it; the database
    is migrated forward again afterwards, whatever the test did."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        yield MigrationExecutor(connection).loader.project_state(BEFORE).apps
    finally:
        migrate_forward()


def test_migration_fails_extra_requests_in_flight_keeping_the_running_or_oldest_one(
    apps_at_0003
):
    Group = apps_at_0003.get_model("auth", "Group")
    User = apps_at_0003.get_model("auth", "User")
    Request = apps_at_0003.get_model(APP, "ResourceRequest")
    team = Group.objects.create(name="platform")
    user = User.objects.create(username="rita")
    start = timezone.now() - timedelta(hours=1)
    made = {}

    def request(key, name, status, minute, environment="alpha"):
        row = Request.objects.create(
            environment=environment, resource_type="s3_bucket", name=name, status=status,
            physical_name=f"krp-{environment}-{name}", task_id=key, requested_by=user,
            team=team, lease_owner="vm:1" if status == "running" else "",
        )
        # created_at is set on insert; give each row its place in time.
        Request.objects.filter(pk=row.pk).update(created_at=start + timedelta(minutes=minute))
        made[key] = row.pk

    # A running one is kept though it is not the oldest.
    request("orders-queued", "orders", "queued", 0)
    request("orders-running", "orders", "running", 1)
    request("orders-waiting", "orders", "pending_approval", 2)
    # None running: the oldest is kept.
    request("logs-waiting", "logs", "pending_approval", 1)
    request("logs-older", "logs", "queued", 0)
    request("logs-newer", "logs", "queued", 2)
    # One in flight each: nothing to fail.
    request("solo", "solo", "queued", 0)
    request("orders-in-prod", "orders", "queued", 0, environment="prod")
    request("done-old", "done", "succeeded", 0)
    request("done-queued", "done", "queued", 1)

    migrate_forward()

    rows = {key: ResourceRequest.objects.get(pk=pk) for key, pk in made.items()}
    failed = {key for key, row in rows.items() if row.status == RequestStatus.FAILED}
    assert failed == {"orders-queued", "orders-waiting", "logs-waiting", "logs-newer"}
    assert {key: rows[key].status for key in rows.keys() - failed} == {
        "orders-running": "running", "logs-older": "queued", "solo": "queued",
        "orders-in-prod": "queued", "done-old": "succeeded", "done-queued": "queued",
    }
    for key in failed:
        row = rows[key]
        assert (row.error_code, row.error_message) == ("duplicate_in_flight", WHY)
        assert row.finished_at is not None and row.lease_owner == ""
        event = RequestEvent.objects.get(request=row)
        assert (event.from_status, event.to_status, event.actor, event.message) == (
            {"orders-queued": "queued", "orders-waiting": "pending_approval",
             "logs-waiting": "pending_approval", "logs-newer": "queued"}[key],
            "failed", "migration", WHY)
    assert not RequestEvent.objects.exclude(request__in=[rows[key].pk for key in failed]).exists()

    # The constraint is in place: a second request in flight on "solo" is refused.
    with pytest.raises(IntegrityError), transaction.atomic():
        ResourceRequest.objects.create(
            environment="alpha", resource_type="s3_bucket", name="solo",
            status=RequestStatus.PENDING_APPROVAL, physical_name="krp-alpha-solo",
            task_id="solo-again", requested_by_id=rows["solo"].requested_by_id,
            team_id=rows["solo"].team_id,
        )
