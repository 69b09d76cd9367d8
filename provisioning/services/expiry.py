"""Expiry: owners are warned before a resource's lifetime ends, may extend it within their
environment's bound, and when it ends the sweep files an ordinary delete request for it.

The delete goes through request_submit as a person's would (approval where the
environment requires it, the one-in-flight constraint, the dependents check), requested by
the system user "krp-expiry" on behalf of the resource's team, so it leaves the same audit
trail. One expiry files at most one delete: the request's idempotency key names the
resource and the moment it expired. A resource whose delete is refused (a request in
flight, dependents) stays, with the reason, and is tried again at the next sweep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dependency_injector.wiring import Provide, inject
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning import selectors
from provisioning.errors import Conflict, KrpError, NotFound
from provisioning.models import (
    GONE_STATUSES,
    NotificationEvent,
    RequestAction,
    Resource,
    ResourceEvent,
    ResourceStatus,
    Stack,
)
from provisioning.services.lifetimes import (
    expiry_fields,
    extended_expiry,
    require_one,
    warning_due,
    warning_given,
)
from provisioning.services.notifications import notify_resource
from provisioning.services.requests import actor_name, request_submit
from provisioning.services.stack_expiry import stack_expiry_sweep
from provisioning.services.submission import known_environment

logger = logging.getLogger(__name__)

SYSTEM_USER = "krp-expiry"
BATCH = 500
EXTENDABLE = (ResourceStatus.ACTIVE, ResourceStatus.DRIFTED)


@dataclass
class ExpiryReport:
    warned: list[str] = field(default_factory=list)  # resource ids
    deleting: list[str] = field(default_factory=list)  # delete requests filed
    held: list[str] = field(default_factory=list)  # expired, delete refused for now
    # The same for stacks (services.stack_expiry): stack ids each.
    stacks_warned: list[str] = field(default_factory=list)
    stacks_deleting: list[str] = field(default_factory=list)
    stacks_held: list[str] = field(default_factory=list)


def system_user() -> AbstractBaseUser:
    """The user expiry deletes are requested by: made on first use, inactive, with no
    usable password, so nobody can log in as it."""
    user, created = get_user_model().objects.get_or_create(
        username=SYSTEM_USER, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


@inject
def expiry_sweep(*, now: datetime,
                 settings: KrpSettings = Provide[CoreContainer.settings]) -> ExpiryReport:
    """The sweep's expiry step: every resource whose next warning or expiry is due (a
    batch, through the resource_expiry_due index), warned or its delete filed; then the
    stacks likewise (services.stack_expiry). A failure on one resource is logged and
    leaves the others to go on."""
    report = ExpiryReport()
    due = (Resource.objects.filter(expiry_check_at__lte=now).order_by("expiry_check_at")
           .values_list("pk", flat=True)[:BATCH])
    for pk in due:
        try:
            _check(pk, now=now, settings=settings, report=report)
        except Exception:  # one resource's trouble must not stop the sweep
            logger.exception("expiry: checking resource %s failed; trying again next sweep",
                             pk)
    if Stack.objects.filter(expiry_check_at__lte=now).exists():
        stack_expiry_sweep(now=now, settings=settings, batch=BATCH, system_user=system_user(),
                           report=report)
    return report


def _check(pk: Any, *, now: datetime, settings: KrpSettings, report: ExpiryReport) -> None:
    with transaction.atomic():
        resource = (Resource.objects.select_for_update(of=("self",)).select_related("team")
                    .filter(pk=pk, expiry_check_at__lte=now).first())
        if resource is None:  # extended, or handled by another sweep, meanwhile
            return
        if resource.expires_at is None or resource.status in GONE_STATUSES or (
                resource.environment not in settings.environment_names):
            Resource.objects.filter(pk=pk).update(expiry_check_at=None)
            return
        if resource.expires_at <= now:
            _expire(resource, now=now, report=report)
            return
        threshold, check_at = warning_due(
            expires_at=resource.expires_at, warnings_sent=resource.expiry_warnings, now=now,
            warnings=settings.expiry_warnings_of(resource.environment))
        if threshold is not None:
            warn(resource, left=resource.expires_at - now, before=threshold, now=now)
            report.warned.append(str(pk))
        Resource.objects.filter(pk=pk).update(expiry_check_at=check_at)


def warn(resource: Resource, *, left: timedelta, before: timedelta, now: datetime) -> None:
    """Warn the owners of `resource` that it expires in `left` (its `before` threshold):
    recorded on the resource (the API and the admin show it) and as a ResourceEvent, and
    logged. The one place a warning is given: notifications hook in here."""
    sent = warning_given(before=before, left=left, now=now)
    Resource.objects.filter(pk=resource.pk).update(
        expiry_warnings=[*resource.expiry_warnings, sent])
    resource.expiry_warnings = [*resource.expiry_warnings, sent]
    message = (f"expires at {resource.expires_at.isoformat()}, in {sent['left']} "
               f"(warning {sent['before']} before); extend it to keep it")
    ResourceEvent.objects.create(resource=resource, from_status=resource.status,
                                 to_status="warned", actor="sweep", message=message)
    logger.info("expiry warning: %s (resource %s, team %s) %s", resource, resource.pk,
                resource.team.name, message)
    notify_resource(event=NotificationEvent.EXPIRING, resource=resource,
                    details={"expires_at": resource.expires_at.isoformat(),
                             "left": sent["left"], "warning": sent["before"]})


def _expire(resource: Resource, *, now: datetime, report: ExpiryReport) -> None:
    """File the delete of an expired resource, or record why it cannot be filed yet."""
    expired = resource.expires_at.isoformat()
    try:
        request, _ = request_submit(
            user=system_user(), on_behalf_of=resource.team,
            environment=resource.environment, resource_type=resource.resource_type,
            name=resource.name, action=RequestAction.DELETE, team=resource.team,
            # One expiry, one delete: a second filing is a replay of the first.
            idempotency_key=f"expiry:{resource.pk}:{expired}",
            note=f"expired: {resource} reached its expiry {expired}; filed by the expiry "
                 "sweep")
    except KrpError as exc:
        problem = f"{exc.code}: {exc.message}"
        if problem != resource.expiry_problem:
            ResourceEvent.objects.create(
                resource=resource, from_status=resource.status, to_status="expiry_refused",
                actor="sweep", message=f"expired at {expired}; its delete was refused, "
                f"trying again at the next sweep: {problem}")
        Resource.objects.filter(pk=resource.pk).update(expiry_problem=problem,
                                                       expiry_check_at=now)
        logger.warning("expiry: %s (resource %s) expired at %s; delete refused, trying again "
                       "next sweep: %s", resource, resource.pk, expired, problem)
        report.held.append(str(resource.pk))
        return
    Resource.objects.filter(pk=resource.pk).update(expiry_problem="", expiry_check_at=None)
    logger.info("expiry: %s (resource %s) expired at %s; delete request %s filed (%s)",
                resource, resource.pk, expired, request.pk, request.status)
    report.deleting.append(str(request.pk))


@inject
def resource_extend(*, resource_id: Any, user: AbstractBaseUser, ttl: Any = None,
                    expires_at: Any = None,
                    settings: KrpSettings = Provide[CoreContainer.settings]) -> Resource:
    """Give a live resource of the user's teams a new expiry (`ttl` from now, or
    `expires_at`) within its environment's max_ttl; a resource without one gets one. The
    warnings already sent are forgotten: the new expiry has its own. Recorded as a
    ResourceEvent "extended"."""
    require_one(ttl=ttl, expires_at=expires_at)
    now = timezone.now()
    with transaction.atomic():
        try:
            resource = selectors.visible_to(
                Resource.objects.select_for_update(of=("self",))
                .select_related("team", "created_by_request__stack"),
                user=user).get(pk=resource_id)
        except (Resource.DoesNotExist, ValidationError, ValueError, TypeError):
            raise NotFound(f"resource {resource_id} does not exist") from None
        stack = resource.created_by_request.stack
        if stack is not None:
            # A member lives and expires with its stack (others may refer to it).
            raise Conflict(f"{resource} is member {resource.created_by_request.stack_member} "
                           f"of {stack} ({stack.pk}); it expires with its stack: extend the "
                           f"stack (POST /api/v1/stacks/{stack.pk}/extend/)", "stack_member")
        if resource.status not in EXTENDABLE:
            raise Conflict(f"{resource} is {resource.status}; only a live resource can be "
                           "extended", "not_extendable")
        pending = selectors.request_in_flight(environment=resource.environment,
                                              resource_type=resource.resource_type,
                                              name=resource.name)
        if pending is not None and pending.action == RequestAction.DELETE:
            # A new expiry would not stop it: the delete goes ahead once approved or run.
            raise Conflict(f"{resource} has a delete request in flight ({pending.status}); "
                           "cancel it first, then extend", "delete_in_flight")
        environment = known_environment(settings=settings, name=resource.environment)
        new = extended_expiry(ttl=ttl, expires_at=expires_at, environment=environment,
                              now=now)
        old = resource.expires_at
        Resource.objects.filter(pk=resource.pk).update(
            **expiry_fields(environment=resource.environment, expires_at=new))
        was = f"from {old.isoformat()}" if old else "which had no expiry"
        ResourceEvent.objects.create(
            resource=resource, from_status=resource.status, to_status="extended",
            actor=actor_name(user), message=f"expiry set to {new.isoformat()} ({was})")
    logger.info("%s extended %s (resource %s) to %s", actor_name(user), resource,
                resource.pk, new.isoformat())
    resource.refresh_from_db()
    return resource
