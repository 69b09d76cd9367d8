"""Stacks: several resources asked for as one, created in dependency order, undone as one.

Every member is an ordinary ResourceRequest (its own events, lease, retries, TaskResult,
fencing and identity guard). A stack moves by steps: `stack_advance` records the requests
of the members whose dependencies have all succeeded (their references resolved from those
members' outputs) and publishes their jobs as one Celery canvas: a chord of the step's jobs
whose callback is `stack_advance` again, each job linked to it as well, so that a member
starts as soon as what it needs is done. Members with no dependency between them thus run
in parallel, dependent ones after what they need.

`stack_advance` decides only from the rows (the member requests' statuses), under a lock
of the stack's row, so it may run any number of times: the chord's callback, the sweep
(which advances every active stack, so a stack whose chord was lost with a killed worker
or a broker outage still ends) and the web process at submit. When a member fails for
good, the members not started are cancelled and, with `rollback`, those created are
deleted dependents-first, each by an ordinary delete request; a stack delete does the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Any

from celery import chord, group
from dependency_injector.wiring import Provide, inject
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning import selectors
from provisioning.errors import Conflict, KrpError, NotAllowed, NotFound
from provisioning.models import (
    ACTIVE_STACK_STATUSES,
    GONE_STATUSES,
    IN_FLIGHT_STATUSES,
    LIVE_STACK_STATUSES,
    BlueprintVersion,
    RequestAction,
    RequestStatus,
    ResourceRequest,
    Stack,
    StackAction,
    StackEvent,
    StackMember,
    StackStatus,
)
from provisioning.services import transitions
from provisioning.services.lifetimes import expiry_fields
from provisioning.services.quotas import quota_admit_stack
from provisioning.services.requests import APPROVE_PERMISSION, actor_name, submission_record
from provisioning.services.stack_document import resolve, stack_validate
from provisioning.services.submission import known_environment, submission_validate

logger = logging.getLogger(__name__)

ADVANCE_TASK = "krp.stack_advance"
WORKER = "worker"
FAILED_FOR_GOOD = frozenset({RequestStatus.FAILED, RequestStatus.CANCELLED,
                             RequestStatus.EXPIRED})


class StackRefused(Conflict):
    code = "stack_state"


# Submitting ------------------------------------------------------------------------------


@inject
def stack_submit(
    *,
    user: AbstractBaseUser,
    document: Any,
    idempotency_key: str | None = None,
    blueprint: BlueprintVersion | None = None,
    parameters: dict[str, Any] | None = None,
    settings: KrpSettings = Provide[CoreContainer.settings],
) -> tuple[Stack, bool]:
    """Validate and record a stack; start it unless its environment requires approval.

    Returns (stack, created): the same Idempotency-Key with the same body returns the first
    stack (created False), with another body it is a Conflict."""
    body = {"document": document, "blueprint": blueprint.pk if blueprint else None,
            "parameters": parameters}
    body_hash = hashlib.sha256(json.dumps(body, sort_keys=True, default=str)
                               .encode()).hexdigest()
    if idempotency_key:
        first = _replay(user, idempotency_key, body_hash)
        if first is not None:
            return first, False
    if isinstance(document, dict):
        environment, name = document.get("environment"), document.get("name")
        if isinstance(environment, str) and isinstance(name, str) and Stack.objects.filter(
                environment=environment, name=name,
                status__in=sorted(LIVE_STACK_STATUSES)).exists():
            raise _name_taken(environment, name)
    teams = list(user.groups.order_by("name"))
    plan = stack_validate(document=document, teams=teams, settings=settings)
    now = timezone.now()
    try:
        with transaction.atomic():
            # Its creates count against the team's quotas as a request's would, all at once
            # (its members not yet recorded count as being created until they are).
            admission = quota_admit_stack(
                team=plan.team, environment=plan.environment,
                members=[(member.key, member.resource_type) for member in plan.members])
            requires_approval = (plan.environment.requires_approval if admission is None
                                 else admission.requires_approval)
            status = StackStatus.PENDING_APPROVAL if requires_approval else StackStatus.RUNNING
            why = (f"; {admission.note}" if admission is not None and admission.note
                   else f"; {plan.environment.name} requires approval"
                   if status == StackStatus.PENDING_APPROVAL else "")
            stack = Stack.objects.create(
                environment=plan.environment.name, name=plan.name, status=status,
                document=document, rollback=plan.rollback, blueprint=blueprint,
                parameters=parameters or {}, requested_by=user, team=plan.team,
                idempotency_key=idempotency_key or None, body_hash=body_hash,
                started_at=now if status == StackStatus.RUNNING else None,
                # A moment asked for is scheduled now; a ttl when the stack succeeds.
                ttl=plan.ttl, **expiry_fields(environment=plan.environment.name,
                                              expires_at=plan.expires_at),
            )
            StackMember.objects.bulk_create([
                StackMember(stack=stack, key=member.key, resource_type=member.resource_type,
                            name=member.name, spec=member.spec, tags=member.tags,
                            depends_on=list(member.depends_on), position=member.position)
                for member in plan.members
            ])
            StackEvent.objects.create(
                stack=stack, to_status=status, actor=actor_name(user),
                message=f"submitted with {len(plan.members)} members{why}")
            if status == StackStatus.RUNNING:
                _advance_locked(stack, settings=settings)
    except IntegrityError:
        first = _replay(user, idempotency_key, body_hash) if idempotency_key else None
        if first is not None:
            return first, False
        raise _name_taken(plan.environment.name, plan.name) from None
    return stack, True


def _name_taken(environment: str, name: str) -> Conflict:
    other = Stack.objects.filter(environment=environment, name=name,
                                 status__in=sorted(LIVE_STACK_STATUSES)).first()
    which = f" ({other.pk}, {other.status})" if other else ""
    return Conflict(f"stack {environment}/{name} already exists{which}; delete it first or "
                    "choose another name", "already_exists")


def _replay(user: AbstractBaseUser, key: str, body_hash: str) -> Stack | None:
    first = Stack.objects.filter(requested_by=user.pk, idempotency_key=key).first()
    if first is None:
        return None
    if first.body_hash != body_hash:
        raise Conflict(f"Idempotency-Key {key!r} was already used for stack {first.pk} with "
                       "a different body; use a new key for a new stack",
                       "idempotency_key_reused")
    return first


# What people do to a stack -----------------------------------------------------------------


@inject
def stack_approve(*, stack_id: Any, user: AbstractBaseUser,
                  settings: KrpSettings = Provide[CoreContainer.settings]) -> Stack:
    """An approver lets a stack (its creation, or its deletion) go ahead, every member
    with it."""
    stack = _get(stack_id, user=user)
    if not user.has_perm(APPROVE_PERMISSION):
        raise NotAllowed("approving stacks needs the approve_resourcerequest permission")
    if stack.requested_by_id == user.pk:
        raise NotAllowed("a requester cannot approve their own stack", "self_approval")
    with transaction.atomic():
        stack = _locked(stack.pk)
        to = StackStatus.DELETING if stack.action == StackAction.DELETE else StackStatus.RUNNING
        _move(stack, [StackStatus.PENDING_APPROVAL], to, actor=actor_name(user),
              message="approved", verb="approve it", approved_by=user,
              started_at=stack.started_at or timezone.now())
        _advance_locked(stack, settings=settings)
    return stack


def stack_cancel(*, stack_id: Any, user: AbstractBaseUser) -> Stack:
    """Withdraw a stack waiting for approval. A waiting deletion is withdrawn and the
    stack stays as it was."""
    stack = _get(stack_id, user=user)
    with transaction.atomic():
        stack = _locked(stack.pk)
        if stack.action == StackAction.DELETE:
            to = _settled_status(stack)
            _move(stack, [StackStatus.PENDING_APPROVAL], to, actor=actor_name(user),
                  message="deletion cancelled", verb="cancel it", action=StackAction.CREATE)
        else:
            _move(stack, [StackStatus.PENDING_APPROVAL], StackStatus.CANCELLED,
                  actor=actor_name(user), message="cancelled", verb="cancel it",
                  finished_at=timezone.now())
    return stack


@inject
def stack_retry(*, stack_id: Any, user: AbstractBaseUser,
                settings: KrpSettings = Provide[CoreContainer.settings]) -> Stack:
    """Run a failed or rolled-back stack again: the members it holds stay, the others are
    asked for anew (a failed deletion is tried again). Waits for approval again where the
    environment requires it; what it asks for anew meets the team's quotas as at submit."""
    stack = _get(stack_id, user=user)
    environment = known_environment(settings=settings, name=stack.environment)
    with transaction.atomic():
        stack = _locked(stack.pk)
        if stack.status not in (StackStatus.FAILED, StackStatus.ROLLED_BACK):
            raise StackRefused(f"stack {stack.pk} is {stack.status}; only a failed or "
                               "rolled-back stack can be retried")
        deleting = stack.error_code == "delete_failed"
        # A delete that failed for good is asked for anew (a rollback's too).
        StackMember.objects.filter(
            stack=stack, delete_request__status__in=sorted(FAILED_FOR_GOOD)).update(
            delete_request=None)
        requires_approval, why = environment.requires_approval, ""
        if deleting:
            to = StackStatus.DELETING
        else:
            to = StackStatus.RUNNING
            asked_anew = []
            for member in stack.members.select_related("request__resource"):
                if not _holds_resource(member):
                    member.state = StackMember.State.WAITING
                    member.request = member.delete_request = None
                    member.error_code = member.error_message = ""
                    member.save()
                    asked_anew.append((member.key, member.resource_type))
            # What it asks for anew counts against the team's quotas as at submit.
            admission = quota_admit_stack(team=stack.team, environment=environment,
                                          members=asked_anew)
            if admission is not None:
                requires_approval = admission.requires_approval
                why = f"; {admission.note}" if admission.note else ""
        if requires_approval:
            to = StackStatus.PENDING_APPROVAL
        _move(stack, [stack.status], to, actor=actor_name(user), message=f"retried{why}",
              verb="retry it", error_code="", error_message="", finished_at=None,
              action=StackAction.DELETE if deleting else StackAction.CREATE,
              started_at=timezone.now())
        if to != StackStatus.PENDING_APPROVAL:
            _advance_locked(stack, settings=settings)
    return stack


@inject
def stack_delete(*, stack_id: Any, user: AbstractBaseUser, on_behalf_of: Group | None = None,
                 note: str = "",
                 settings: KrpSettings = Provide[CoreContainer.settings]) -> Stack:
    """Tear a stack down: its members are deleted dependents first, each by an ordinary
    delete request. Waits for approval where the environment requires it.

    For KRP's own system users only: `on_behalf_of` is the stack's team, which the user
    acts for without being a member of it (the expiry sweep); `note` opens the event's
    message."""
    stack = _get(stack_id, user=user, team=on_behalf_of)
    environment = known_environment(settings=settings, name=stack.environment)
    with transaction.atomic():
        stack = _locked(stack.pk)
        if stack.status not in (StackStatus.SUCCEEDED, StackStatus.FAILED):
            raise StackRefused(
                f"stack {stack.pk} is {stack.status}; only a stack that succeeded or failed "
                "can be deleted" + (" (cancel it instead)"
                                    if stack.status == StackStatus.PENDING_APPROVAL else ""))
        to = (StackStatus.PENDING_APPROVAL if environment.requires_approval
              else StackStatus.DELETING)
        _move(stack, [stack.status], to, actor=actor_name(user),
              message=(f"{note}; " if note else "") + "deletion asked" + (
                  "; waits for approval" if to == StackStatus.PENDING_APPROVAL else ""),
              verb="delete it", action=StackAction.DELETE, error_code="", error_message="",
              finished_at=None, approved_by=None)
        if to == StackStatus.DELETING:
            _advance_locked(stack, settings=settings)
    return stack


def _get(stack_id: Any, *, user: AbstractBaseUser, team: Group | None = None) -> Stack:
    stacks = (Stack.objects.filter(team=team) if team is not None
              else selectors.visible_to(Stack.objects.all(), user=user))
    try:
        return stacks.get(pk=stack_id)
    except (Stack.DoesNotExist, ValidationError, ValueError, TypeError):
        raise NotFound(f"stack {stack_id} does not exist") from None


# Advancing ------------------------------------------------------------------------------


@inject
def stack_advance(*, stack_id: Any,
                  settings: KrpSettings = Provide[CoreContainer.settings]) -> Stack | None:
    """Move an active stack on from what its members' requests say: record and publish the
    next step, or settle its status. Safe to run at any time, any number of times."""
    with transaction.atomic():
        stack = Stack.objects.select_for_update().filter(pk=stack_id).first()
        if stack is None:
            return None
        _advance_locked(stack, settings=settings)
    return stack


def _advance_locked(stack: Stack, *, settings: KrpSettings) -> None:
    """stack_advance's work, for a stack row the caller holds locked."""
    if stack.status not in ACTIVE_STACK_STATUSES:
        return
    members = list(stack.members.select_related(
        "request__resource", "delete_request", "stack__requested_by", "stack__team"))
    if stack.status == StackStatus.RUNNING:
        _advance_creation(stack, members, settings=settings)
    else:
        _advance_teardown(stack, members, settings=settings)


def _advance_creation(stack: Stack, members: list[StackMember], *,
                      settings: KrpSettings) -> None:
    failed = [m for m in members if m.state == StackMember.State.REFUSED or (
        m.request is not None and m.request.status in FAILED_FOR_GOOD)]
    if failed:
        _stop(stack, members, failed, settings=settings)
        return
    if all(_status(m) == RequestStatus.SUCCEEDED for m in members):
        now = timezone.now()
        _move(stack, [StackStatus.RUNNING], StackStatus.SUCCEEDED, actor=WORKER,
              message=f"all {len(members)} members created", finished_at=now,
              **_lifetime_started(stack, now=now))
        return
    done = {m.key: m for m in members if _status(m) == RequestStatus.SUCCEEDED}
    runnable = [m for m in members if m.state == StackMember.State.WAITING
                and all(key in done for key in m.depends_on)]
    if not runnable:
        return  # members in flight: their step's callback (or the sweep) comes back
    outputs = {key: {**member.request.outputs, "name": member.name}
               for key, member in done.items()}
    recorded: list[ResourceRequest] = []
    refused: list[StackMember] = []
    for member in runnable:
        try:
            with transaction.atomic():
                request = _record_member(stack, member, outputs, settings=settings)
        except (KrpError, KeyError, IntegrityError) as exc:
            _refuse_member(member, exc)
            refused.append(member)
            continue
        member.state, member.request = StackMember.State.RECORDED, request
        member.save(update_fields=["state", "request"])
        recorded.append(request)
    if refused:
        _stop(stack, members, refused, settings=settings)
        return
    _publish_step_on_commit(stack, recorded)


def _record_member(stack: Stack, member: StackMember, outputs: dict[str, dict[str, Any]], *,
                   settings: KrpSettings) -> ResourceRequest:
    """Record a member's create request, its references resolved."""
    return _record_request(stack, member, RequestAction.CREATE,
                           spec=resolve(member.spec, outputs), tags=member.tags,
                           settings=settings)


def _record_request(stack: Stack, member: StackMember, action: str, *, spec: Any, tags: Any,
                    settings: KrpSettings) -> ResourceRequest:
    """Record a member's create or delete request through the checks any submission meets
    (the name free, what its spec refers to there, no dependents left for a delete, the
    requester still in the team), queued: the stack was approved as a whole."""
    context = selectors.submission_context(
        user=stack.requested_by, idempotency_key=None, environment=stack.environment,
        resource_type=member.resource_type, name=member.name)
    submission = submission_validate(
        user=stack.requested_by, environment=stack.environment,
        resource_type=member.resource_type, name=member.name, spec=spec, action=action,
        tags=tags, team=stack.team, not_before=None, deadline=None, idempotency_key=None,
        body_hash="", settings=settings, context=context, ttl_required=False)
    return submission_record(submission=replace(submission, requires_approval=False),
                             settings=settings, stack=stack, stack_member=member.key)


def _refuse_member(member: StackMember, exc: Exception) -> None:
    if isinstance(exc, KeyError):
        code, message = "unresolved_reference", (
            f"a reference names output {exc.args[0]!r}, which the member it refers to "
            "did not record")
    elif isinstance(exc, IntegrityError):
        code, message = "request_in_flight", (
            f"{member.resource_type} {member.name} got a request in flight meanwhile")
    else:
        code, message = exc.code, exc.message  # type: ignore[attr-defined]
    member.state, member.error_code, member.error_message = (
        StackMember.State.REFUSED, code, message)
    member.save(update_fields=["state", "error_code", "error_message"])


def _stop(stack: Stack, members: list[StackMember], failed: list[StackMember], *,
          settings: KrpSettings) -> None:
    """A member failed for good: start nothing more, cancel what has not started, and once
    nothing runs, roll back what was created (or end failed, listing what remains)."""
    for member in members:
        if member.state == StackMember.State.WAITING:
            member.state = StackMember.State.CANCELLED
            member.save(update_fields=["state"])
        elif member.request is not None and member.request.status == RequestStatus.QUEUED \
                and member.request.started_at is None:
            try:
                member.request = transitions.cancel(
                    member.request.pk, actor=WORKER,
                    reason=f"stack {stack.name}: {_failure_text(failed)}")
            except transitions.TransitionRefused:
                member.request.refresh_from_db()  # it started meanwhile: it is waited for
    if any(_status(m) in IN_FLIGHT_STATUSES for m in members):
        return  # a member still runs; its step's callback comes back
    created = [m for m in members if _holds_resource(m)]
    why = _failure_text(failed)
    if stack.rollback and created:
        _move(stack, [StackStatus.RUNNING], StackStatus.ROLLING_BACK, actor=WORKER,
              message=f"{why}; rolling back {', '.join(m.key for m in created)}",
              error_code="member_failed", error_message=why)
        _advance_teardown(stack, members, settings=settings)
        return
    remains = (f"; remains: {', '.join(_described(m) for m in created)}" if created
               else "; nothing was created")
    now = timezone.now()
    _move(stack, [StackStatus.RUNNING], StackStatus.FAILED, actor=WORKER,
          message=why + remains, error_code="member_failed", error_message=why + remains,
          finished_at=now, **(_lifetime_started(stack, now=now) if created else {}))


def _advance_teardown(stack: Stack, members: list[StackMember], *,
                      settings: KrpSettings) -> None:
    """Delete the members that hold a resource, dependents first; settle when none do."""
    live = [m for m in members if _holds_resource(m)]
    if any(m.delete_request is not None and m.delete_request.status in IN_FLIGHT_STATUSES
           for m in live):
        return
    stuck = [m for m in live if m.delete_request is not None
             and m.delete_request.status in FAILED_FOR_GOOD]
    if stuck:
        _teardown_failed(stack, live, stuck)
        return
    if not live:
        to = (StackStatus.ROLLED_BACK if stack.status == StackStatus.ROLLING_BACK
              else StackStatus.DELETED)
        _move(stack, [stack.status], to, actor=WORKER,
              message="every member it created is deleted" if to == StackStatus.ROLLED_BACK
              else "every member deleted", finished_at=timezone.now())
        return
    live_keys = {m.key for m in live}
    deletable = [m for m in live if not any(m.key in other.depends_on and other.key in live_keys
                                            for other in live)]
    recorded: list[ResourceRequest] = []
    for member in deletable:
        try:
            with transaction.atomic():
                request = _record_request(stack, member, RequestAction.DELETE, spec=None,
                                          tags=None, settings=settings)
        except (KrpError, IntegrityError) as exc:
            message = (exc.message if isinstance(exc, KrpError)  # type: ignore[attr-defined]
                       else "another request is in flight on it")
            _teardown_failed(stack, live, [member], why=message)
            return
        member.delete_request = request
        member.save(update_fields=["delete_request"])
        recorded.append(request)
    _publish_step_on_commit(stack, recorded)


def _teardown_failed(stack: Stack, live: list[StackMember], stuck: list[StackMember],
                     why: str | None = None) -> None:
    what = "rollback" if stack.status == StackStatus.ROLLING_BACK else "deletion"
    reasons = "; ".join(
        f"{m.key}: " + (why or (m.delete_request.error_message if m.delete_request
                                else "") or "failed") for m in stuck)
    remains = ", ".join(_described(m) for m in live)
    message = f"{what} could not delete {reasons}; remains: {remains}"
    code = "rollback_failed" if what == "rollback" else "delete_failed"
    _move(stack, [stack.status], StackStatus.FAILED, actor=WORKER, message=message,
          error_code=code, error_message=message, finished_at=timezone.now())


@inject
def _publish_step_on_commit(stack: Stack, requests: list[ResourceRequest],
                            settings: KrpSettings = Provide[CoreContainer.settings],
                            celery_app=Provide[CoreContainer.celery_app]) -> None:
    """Publish a step's jobs once the transaction commits, as a chord whose callback
    advances the stack. Each job also advances it when it ends (a link), so a member whose
    dependencies are done starts then, not when the slowest job of their step ends. If the
    publish fails, the requests count as unpublished and the sweep publishes them (and
    advances the stack) later."""
    if not requests:
        return
    queue = settings.environment(stack.environment).queue

    def advance():
        return celery_app.signature(ADVANCE_TASK, kwargs={"stack_id": str(stack.pk)},
                                    queue=queue, immutable=True)

    jobs = [celery_app.provision_task(request.resource_type)
            .si(request_id=str(request.pk)).set(task_id=request.task_id, queue=queue,
                                                link=advance())
            for request in requests]

    def publish() -> None:
        try:
            chord(group(jobs), advance()).apply_async()
        except Exception as exc:  # noqa: BLE001 - the broker's errors vary by transport
            logger.warning("could not publish a step of stack %s (%s: %s); the sweep will "
                           "publish its requests again", stack.pk, type(exc).__name__, exc)
            ResourceRequest.objects.filter(pk__in=[r.pk for r in requests],
                                           status=RequestStatus.QUEUED).update(
                published_at=None)

    transaction.on_commit(publish)


# Helpers --------------------------------------------------------------------------------


def _status(member: StackMember) -> str:
    """A member's create status: its request's, or its own state before it has one."""
    return member.request.status if member.request is not None else member.state


def _holds_resource(member: StackMember) -> bool:
    """Whether the member's resource exists (created, and not deleted since)."""
    request = member.request
    if request is None or request.status != RequestStatus.SUCCEEDED:
        return False
    resource = request.resource
    return resource is not None and resource.status not in GONE_STATUSES


def _described(member: StackMember) -> str:
    return f"{member.key} ({member.resource_type} {member.name})"


def _failure_text(failed: list[StackMember]) -> str:
    parts = []
    for member in failed:
        if member.state == StackMember.State.REFUSED:
            parts.append(f"member {member.key} refused: {member.error_message}")
        else:
            request = member.request
            parts.append(f"member {member.key} {request.status}"
                         + (f": {request.error_message}" if request.error_message else ""))
    return "; ".join(parts)


def _settled_status(stack: Stack) -> str:
    members = list(stack.members.select_related("request__resource"))
    return (StackStatus.SUCCEEDED if all(_holds_resource(m) for m in members)
            else StackStatus.FAILED)


def _lifetime_started(stack: Stack, *, now) -> dict[str, Any]:
    """The expiry fields a stack's ttl gives it once it holds its members (it succeeded,
    or failed leaving some): counted from `now`, unless it has an expiry already (a moment
    asked for, or a clock started by an earlier run before a retry)."""
    if stack.ttl is None or stack.expires_at is not None:
        return {}
    return expiry_fields(environment=stack.environment, expires_at=now + stack.ttl)


def _locked(stack_id: Any) -> Stack:
    return Stack.objects.select_for_update().get(pk=stack_id)


def _move(stack: Stack, sources: list[str], to: str, *, actor: str, message: str,
          verb: str | None = None, **fields: Any) -> None:
    """Change a locked stack's status (and `fields`), with its event; refuse a change from
    any status but `sources`."""
    if stack.status not in sources:
        raise StackRefused(f"stack {stack.pk} is {stack.status}; cannot "
                           f"{verb or 'move it to ' + to} (allowed only when "
                           f"{' or '.join(sources)})")
    previous = stack.status
    stack.status = to
    for name, value in fields.items():
        setattr(stack, name, value)
    stack.save(update_fields=["status", "updated_at", *fields])
    StackEvent.objects.create(stack=stack, from_status=previous, to_status=to, actor=actor,
                              message=message)
    logger.info("stack %s: %s -> %s (%s)", stack.pk, previous, to, message)
