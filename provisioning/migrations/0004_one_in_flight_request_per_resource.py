"""One request in flight per resource, decided by the database.

Before this constraint a race could accept several requests on one resource. Any such
extras still waiting are failed first (the running one, else the oldest, is kept), with
an audit event saying why, so the constraint can be created on a database that has them.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.models import Count
from django.utils import timezone

IN_FLIGHT = ["pending_approval", "queued", "running"]
WHY = "failed by migration 0004: another request on this resource was already in flight"


def fail_duplicates_in_flight(apps, schema_editor):
    ResourceRequest = apps.get_model("provisioning", "ResourceRequest")
    RequestEvent = apps.get_model("provisioning", "RequestEvent")
    crowded = (
        ResourceRequest.objects.filter(status__in=IN_FLIGHT)
        .values("environment", "resource_type", "name")
        .annotate(count=Count("pk")).filter(count__gt=1)
    )
    for target in crowded:
        requests = list(
            ResourceRequest.objects.filter(status__in=IN_FLIGHT, environment=target["environment"],
                                           resource_type=target["resource_type"],
                                           name=target["name"])
            .order_by("created_at")
        )
        keep = next((r for r in requests if r.status == "running"), requests[0])
        for request in requests:
            if request.pk == keep.pk:
                continue
            RequestEvent.objects.create(request_id=request.pk, from_status=request.status,
                                        to_status="failed", actor="migration", message=WHY)
            ResourceRequest.objects.filter(pk=request.pk).update(
                status="failed", error_code="duplicate_in_flight", error_message=WHY,
                finished_at=timezone.now(), lease_owner="", lease_expires_at=None,
            )


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('provisioning', '0003_create_issued_at'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(fail_duplicates_in_flight, migrations.RunPython.noop),
        # The new constraint subsumes this one (running is one of the in-flight statuses).
        migrations.RemoveConstraint(
            model_name='resourcerequest',
            name='one_running_request_per_resource',
        ),
        migrations.AddConstraint(
            model_name='resourcerequest',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['pending_approval', 'queued', 'running'])), fields=('environment', 'resource_type', 'name'), name='one_in_flight_request_per_resource'),
        ),
    ]
