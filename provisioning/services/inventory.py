"""The inventory's writes: what a request's run does to the Resource rows KRP keeps.

Kept apart from execution so the sweep, which also ends runs, changes the inventory the
same way without depending on the worker's code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from provisioning.models import RequestAction, Resource, ResourceRequest, ResourceStatus
from provisioning.services.lifetimes import expiry_fields, lifetime_on_success


def mark_deleting(*, resource: Resource) -> None:
    """A delete is under way: the resource is no longer simply active."""
    Resource.objects.filter(pk=resource.pk).update(status=ResourceStatus.DELETING)


def undo_deleting(*, request: ResourceRequest) -> None:
    """A delete that failed leaves its resource as it was: active again, not 'deleting'."""
    if request.action == RequestAction.DELETE and request.resource_id:
        Resource.objects.filter(
            pk=request.resource_id, status=ResourceStatus.DELETING
        ).update(status=ResourceStatus.ACTIVE)


def record_success(*, request: ResourceRequest, result: dict[str, Any], tags: dict[str, str],
                   now: datetime) -> None:
    """Write what a succeeded request made, changed or deleted into the inventory."""
    if request.action == RequestAction.DELETE:
        Resource.objects.filter(pk=request.resource_id).update(
            status=ResourceStatus.DELETED, deleted_at=now, last_verified_at=now
        )
        return
    fields = {
        "physical_name": request.physical_name,
        "physical_id": result["physical_id"],
        "arn": result["arn"],
        "spec": request.spec,
        "tags": tags,
        "outputs": {k: v for k, v in result.items() if k != "physical_name"},
        "status": ResourceStatus.ACTIVE,
        "last_verified_at": now,
    }
    # The lifetime it asked for; an update that asked for none keeps the resource's, a
    # create or import that asked for none makes one that lives until deleted.
    lifetime = lifetime_on_success(request, now=now)
    if request.action == RequestAction.UPDATE:
        Resource.objects.filter(pk=request.resource_id).update(**fields, **(lifetime or {}))
        return
    fields.update(lifetime or expiry_fields(environment=request.environment, expires_at=None))
    # An import is recorded as a create is: a new inventory row, now this request's.
    # A resource reconcile found missing, made again: the same row, now this request's.
    if request.resource_id and Resource.objects.filter(
        pk=request.resource_id, status=ResourceStatus.MISSING
    ).update(created_by_request=request, team_id=request.team_id, deleted_at=None,
              **fields):
        return
    resource = Resource.objects.create(
        environment=request.environment, resource_type=request.resource_type,
        name=request.name, team_id=request.team_id, created_by_request=request, **fields,
    )
    ResourceRequest.objects.filter(pk=request.pk).update(resource=resource)
