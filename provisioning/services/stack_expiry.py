"""A stack's time to live: the stack expires as a whole, as a resource does alone.

Its members have no expiry of their own (a member others refer to could not be deleted
alone). The sweep's expiry step (services.expiry.expiry_sweep) warns the stack's team at
each threshold once, then deletes the stack through stack_delete as a person would
(approval where the environment requires it), as the system user "krp-expiry" on behalf of
the stack's team. The rules (bounds, warnings, schedule) are services.lifetimes', shared
with resources. A stack whose delete is refused (still running, a deletion in flight) is
left, with the reason, and tried again at the next sweep.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from dependency_injector.wiring import Provide, inject
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning import selectors
from provisioning.errors import Conflict, KrpError, NotFound
from provisioning.models import (
    LIVE_STACK_STATUSES,
    NotificationEvent,
    Stack,
    StackAction,
    StackEvent,
    StackStatus,
)
from provisioning.services.lifetimes import (
    expiry_fields,
    extended_expiry,
    require_one,
    warning_due,
    warning_given,
)
from provisioning.services.notifications import notify_stack
from provisioning.services.requests import actor_name
from provisioning.services.stacks import stack_delete
from provisioning.services.submission import known_environment

logger = logging.getLogger(__name__)

# A stack that holds its members; one still being made gets its expiry when it settles.
EXTENDABLE = (StackStatus.SUCCEEDED, StackStatus.FAILED)


def stack_expiry_sweep(*, now: datetime, settings: KrpSettings, batch: int,
                       system_user: AbstractBaseUser, report: Any) -> None:
    """The stacks' part of the sweep's expiry step: every stack whose next warning or
    expiry is due (a batch, through the stack_expiry_due index), warned or its delete
    asked for; `report` (an ExpiryReport) gets their ids. A failure on one stack is logged
    and leaves the others to go on."""
    due = (Stack.objects.filter(expiry_check_at__lte=now).order_by("expiry_check_at")
           .values_list("pk", flat=True)[:batch])
    for pk in due:
        try:
            _check(pk, now=now, settings=settings, system_user=system_user, report=report)
        except Exception:  # one stack's trouble must not stop the sweep
            logger.exception("expiry: checking stack %s failed; trying again next sweep", pk)


def _check(pk: Any, *, now: datetime, settings: KrpSettings, system_user: AbstractBaseUser,
           report: Any) -> None:
    with transaction.atomic():
        stack = (Stack.objects.select_for_update(of=("self",)).select_related("team")
                 .filter(pk=pk, expiry_check_at__lte=now).first())
        if stack is None:  # extended, or handled by another sweep, meanwhile
            return
        if stack.expires_at is None or stack.status not in LIVE_STACK_STATUSES or (
                stack.environment not in settings.environment_names):
            Stack.objects.filter(pk=pk).update(expiry_check_at=None)
            return
        if stack.expires_at <= now:
            _expire(stack, now=now, system_user=system_user, report=report)
            return
        threshold, check_at = warning_due(
            expires_at=stack.expires_at, warnings_sent=stack.expiry_warnings, now=now,
            warnings=settings.expiry_warnings_of(stack.environment))
        if threshold is not None:
            warn(stack, left=stack.expires_at - now, before=threshold, now=now)
            report.stacks_warned.append(str(pk))
        Stack.objects.filter(pk=pk).update(expiry_check_at=check_at)


def warn(stack: Stack, *, left: timedelta, before: timedelta, now: datetime) -> None:
    """Warn the stack's team that it expires in `left` (its `before` threshold): recorded
    on the stack and as a StackEvent "warned", logged, and an `expiring` notification."""
    sent = warning_given(before=before, left=left, now=now)
    stack.expiry_warnings = [*stack.expiry_warnings, sent]
    Stack.objects.filter(pk=stack.pk).update(expiry_warnings=stack.expiry_warnings)
    message = (f"expires at {stack.expires_at.isoformat()}, in {sent['left']} (warning "
               f"{sent['before']} before); extend it to keep it and its members")
    StackEvent.objects.create(stack=stack, from_status=stack.status, to_status="warned",
                              actor="sweep", message=message)
    logger.info("expiry warning: %s (%s, team %s) %s", stack, stack.pk, stack.team.name,
                message)
    notify_stack(event=NotificationEvent.EXPIRING, stack=stack,
                 details={"expires_at": stack.expires_at.isoformat(),
                          "left": sent["left"], "warning": sent["before"]})


def _expire(stack: Stack, *, now: datetime, system_user: AbstractBaseUser,
            report: Any) -> None:
    """Ask for the deletion of an expired stack, or record why it cannot be asked yet."""
    expired = stack.expires_at.isoformat()
    try:
        deleting = stack_delete(
            stack_id=stack.pk, user=system_user, on_behalf_of=stack.team,
            note=f"expired: {stack} reached its expiry {expired}; asked by the expiry sweep")
    except KrpError as exc:
        problem = f"{exc.code}: {exc.message}"
        if problem != stack.expiry_problem:
            StackEvent.objects.create(
                stack=stack, from_status=stack.status, to_status="expiry_refused",
                actor="sweep", message=f"expired at {expired}; its deletion was refused, "
                f"trying again at the next sweep: {problem}")
        Stack.objects.filter(pk=stack.pk).update(expiry_problem=problem, expiry_check_at=now)
        logger.warning("expiry: %s (%s) expired at %s; deletion refused, trying again next "
                       "sweep: %s", stack, stack.pk, expired, problem)
        report.stacks_held.append(str(stack.pk))
        return
    # Its deletion is asked for: this expiry is done (stack_delete refuses a second one).
    Stack.objects.filter(pk=stack.pk).update(expiry_problem="", expiry_check_at=None)
    logger.info("expiry: %s (%s) expired at %s; deletion asked (%s)", stack, stack.pk,
                expired, deleting.status)
    report.stacks_deleting.append(str(stack.pk))


@inject
def stack_extend(*, stack_id: Any, user: AbstractBaseUser, ttl: Any = None,
                 expires_at: Any = None,
                 settings: KrpSettings = Provide[CoreContainer.settings]) -> Stack:
    """Give a stack of the user's teams (one that holds its members) a new expiry, `ttl`
    from now or `expires_at`, within its environment's max_ttl; a stack without one gets
    one. The warnings already sent are forgotten. Recorded as a StackEvent "extended"."""
    require_one(ttl=ttl, expires_at=expires_at)
    now = timezone.now()
    with transaction.atomic():
        try:
            stack = selectors.visible_to(
                Stack.objects.select_for_update(of=("self",)).select_related("team"),
                user=user).get(pk=stack_id)
        except (Stack.DoesNotExist, ValidationError, ValueError, TypeError):
            raise NotFound(f"stack {stack_id} does not exist") from None
        if stack.action == StackAction.DELETE and stack.status in (
                StackStatus.PENDING_APPROVAL, StackStatus.DELETING):
            # A new expiry would not stop it: the deletion goes ahead once approved.
            raise Conflict(f"{stack} is being deleted ({stack.status}); cancel the deletion "
                           "first, then extend", "delete_in_flight")
        if stack.status not in EXTENDABLE:
            raise Conflict(f"{stack} is {stack.status}; only a stack that succeeded or failed "
                           "holding members can be extended", "not_extendable")
        environment = known_environment(settings=settings, name=stack.environment)
        new = extended_expiry(ttl=ttl, expires_at=expires_at, environment=environment,
                              now=now)
        old = stack.expires_at
        Stack.objects.filter(pk=stack.pk).update(
            **expiry_fields(environment=stack.environment, expires_at=new))
        was = f"from {old.isoformat()}" if old else "which had no expiry"
        StackEvent.objects.create(
            stack=stack, from_status=stack.status, to_status="extended",
            actor=actor_name(user), message=f"expiry set to {new.isoformat()} ({was})")
    logger.info("%s extended %s (%s) to %s", actor_name(user), stack, stack.pk,
                new.isoformat())
    stack.refresh_from_db()
    return stack
