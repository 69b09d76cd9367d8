"""What operators do to the inventory itself, not through a request: forget a resource.

A resource reconcile found missing (gone from the cloud behind KRP's back) keeps every
reconcile reporting it until someone decides: create it again (a create of the same name,
which makes it under the same inventory row), or forget it here. A forgotten resource is
no longer KRP's: reconcile stops looking for it, and its name may be created again.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from provisioning import selectors
from provisioning.errors import Conflict, NotAllowed, NotFound
from provisioning.models import Resource, ResourceStatus
from provisioning.services.submission import check_no_dependents, in_flight_conflict

logger = logging.getLogger(__name__)

FORGET_PERMISSION = "provisioning.forget_resource"


def resource_forget(*, resource_id: Any, user: AbstractBaseUser) -> Resource:
    """Stop tracking a missing resource: it becomes `forgotten` and its name is free."""
    with transaction.atomic():
        try:
            resource = selectors.visible_to(
                Resource.objects.select_for_update(of=("self",)), user=user,
            ).get(pk=resource_id)
        except (Resource.DoesNotExist, ValidationError, ValueError, TypeError):
            raise NotFound(f"resource {resource_id} does not exist") from None
        if not user.has_perm(FORGET_PERMISSION):
            raise NotAllowed("forgetting resources needs the forget_resource permission")
        where = f"{resource.resource_type} {resource.environment}/{resource.name}"
        if resource.status != ResourceStatus.MISSING:
            raise Conflict(
                f"{where} is {resource.status}; only a resource reconcile found missing from "
                "the cloud can be forgotten (delete one that is there)", "not_missing",
            )
        if selectors.request_in_flight(environment=resource.environment,
                                       resource_type=resource.resource_type,
                                       name=resource.name) is not None:
            raise in_flight_conflict(environment=resource.environment,
                                     resource_type=resource.resource_type,
                                     name=resource.name, team=resource.team)
        check_no_dependents(environment=resource.environment,
                            resource_type=resource.resource_type, name=resource.name)
        Resource.objects.filter(pk=resource.pk).update(status=ResourceStatus.FORGOTTEN,
                                                       deleted_at=timezone.now())
    logger.info("%s forgot %s (resource %s), missing from the cloud", user.get_username(),
                where, resource.pk)
    resource.refresh_from_db()
    return resource
