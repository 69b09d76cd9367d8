"""What people do to requests: submit, approve, cancel, retry.

The API, the admin and `manage.py krp` all call these; none of them changes a request
any other way.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from dependency_injector.wiring import Provide, inject
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning import selectors
from provisioning.errors import Conflict, NotAllowed, NotFound
from provisioning.models import (
    RequestAction,
    RequestEvent,
    RequestStatus,
    ResourceRequest,
    ResourceStatus,
    Stack,
)
from provisioning.services import transitions
from provisioning.services.dispatch import (
    publish_on_commit,
    publish_plan_on_commit,
    publish_recorded_on_commit,
    publishes_at_once,
    runs_in_process,
)
from provisioning.services.quotas import (
    quota_admit_retry,
    quota_admit_submission,
    quotas_of_submission,
)
from provisioning.services.submission import (
    Submission,
    in_flight_conflict,
    known_environment,
    submission_check_text,
    submission_validate,
)
from provisioning.signals import announce_on_commit

APPROVE_PERMISSION = "provisioning.approve_resourcerequest"
# What a request in these statuses publishes on commit: its job, or its plan.
_RUN_ON_COMMIT = (RequestStatus.QUEUED, RequestStatus.PENDING_APPROVAL)


def actor_name(user: AbstractBaseUser) -> str:
    return user.get_username()


@inject
def request_submit(
    *,
    user: AbstractBaseUser,
    environment: Any,
    resource_type: Any,
    name: Any,
    spec: Any = None,
    action: Any = RequestAction.CREATE,
    tags: Any = None,
    team: Group | str | None = None,
    not_before: datetime | None = None,
    deadline: datetime | None = None,
    idempotency_key: str | None = None,
    refused: Mapping[str, Sequence[str]] | None = None,
    physical_name: Any = None,
    ttl: Any = None,
    expires_at: datetime | None = None,
    on_behalf_of: Group | None = None,
    note: str = "",
    settings: KrpSettings = Provide[CoreContainer.settings],
) -> tuple[ResourceRequest, bool]:
    """Validate and record a request; publish its job after commit if it needs no approval.

    Returns (request, created). The same idempotency key with the same body returns the
    first request (created False); with a different body it is a Conflict. `refused`: the
    problems a caller already found in the body's shape (field -> problems); they are
    reported together with the submission's own, in one InvalidRequest. `ttl` or
    `expires_at`: how long the resource it makes or changes lives.

    For KRP's own system users only (never a person's input): `on_behalf_of` is the team
    the user acts for without being a member of it (the expiry sweep, for the team that
    owns an expired resource); `note` opens the first event's message.
    """
    body = {
        "environment": environment, "resource_type": resource_type, "name": name,
        "spec": spec if spec is not None else {}, "action": action,
        # Omitted tags stay None: an update without tags keeps the resource's, one with {}
        # removes them, so the two are different bodies.
        "tags": tags,
        "team": team.name if isinstance(team, Group) else team,
        "not_before": not_before.isoformat() if not_before else None,
        "deadline": deadline.isoformat() if deadline else None,
        **({"physical_name": physical_name} if physical_name is not None else {}),
        # Only when given, so a body without them hashes as it did before they existed.
        **({"ttl": ttl} if ttl is not None else {}),
        **({"expires_at": expires_at.isoformat() if isinstance(expires_at, datetime)
            else expires_at} if expires_at is not None else {}),
    }
    # Before any query: PostgreSQL refuses NUL in text, and the key column's length.
    submission_check_text(
        environment=environment, resource_type=resource_type, name=name, spec=spec,
        tags=tags, team=team.name if isinstance(team, Group) else team,
        idempotency_key=idempotency_key, physical_name=physical_name, ttl=ttl,
    )
    body_hash = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    replayable = bool(idempotency_key) and not refused
    if on_behalf_of is None:
        context = selectors.submission_context(
            user=user, idempotency_key=idempotency_key if replayable else None,
            environment=environment, resource_type=resource_type, name=name)
    else:
        context = selectors.submission_context_for(
            user=user, team=on_behalf_of,
            idempotency_key=idempotency_key if replayable else None,
            environment=environment, resource_type=resource_type, name=name)
    if replayable and context.replay_id is not None:
        return _replay(user, idempotency_key, body_hash, context=context), False
    try:
        with transaction.atomic():
            # Locked before anything else the submission locks (as a stack's does), and
            # only where the team has a quota here: the last slot goes to one submission.
            quotas = quotas_of_submission(context, team=team, environment=environment,
                                          resource_type=resource_type)
            submission = submission_validate(
                user=user, environment=environment, resource_type=resource_type, name=name,
                spec=spec, action=action, tags=tags, team=team, not_before=not_before,
                deadline=deadline, idempotency_key=idempotency_key, body_hash=body_hash,
                settings=settings, context=context, refused=refused,
                physical_name=physical_name, ttl=ttl, expires_at=expires_at,
            )
            if quotas:
                submission = quota_admit_submission(
                    submission, quotas=quotas,
                    environment=settings.environment(submission.environment))
            request = submission_record(submission=submission, settings=settings, note=note)
    except IntegrityError:
        # A constraint decided a race the checks could not see: a concurrent first use of
        # the same idempotency key (then this is a replay of it), or another request put
        # in flight on the resource meanwhile.
        replay = _replay(user, idempotency_key, body_hash) if idempotency_key else None
        if replay is not None:
            return replay, False
        raise in_flight_conflict(
            environment=submission.environment, resource_type=submission.resource_type,
            name=submission.name, team=submission.team,
        ) from None
    except Conflict:
        # A concurrent first use of the same key and body may have won the resource's
        # lock and recorded its request meanwhile: then this is a replay of it, not a
        # second change in flight.
        replay = _replay(user, idempotency_key, body_hash) if idempotency_key else None
        if replay is None:
            raise
        return replay, False
    if request.status in _RUN_ON_COMMIT and runs_in_process() and (
            not transaction.get_connection().in_atomic_block):
        # Eager mode: the job (or, for a request that waits for approval, its plan) ran
        # when the transaction committed; answer with what it did.
        request = selectors.request_detail(user=None).get(pk=request.pk)
    return request, True


def submission_record(*, submission: Submission, settings: KrpSettings,
                      stack: Stack | None = None, stack_member: str = "",
                      note: str = "") -> ResourceRequest:
    """Record a validated submission with its first event, and publish its job after
    commit unless it waits for approval. Run it in the transaction that validated it.

    A stack's member (`stack`, `stack_member`: its key) is recorded queued, stamped as
    published: the stack publishes the jobs of a step together (services.stacks).

    The request comes back as the API shows it, without reading it again: its team, user,
    events (the one just written) and task result (none: no run yet) are those in hand.
    """
    status = RequestStatus.QUEUED if stack is not None else submission.status
    now = timezone.now()
    publish = status == RequestStatus.QUEUED and publishes_at_once(
        not_before=submission.not_before, now=now, settings=settings)
    request = ResourceRequest.objects.create(
        environment=submission.environment,
        resource_type=submission.resource_type,
        name=submission.name,
        action=submission.action,
        spec=submission.spec,
        tags=submission.tags,
        status=status,
        requested_by=submission.user,
        team=submission.team,
        idempotency_key=submission.idempotency_key,
        body_hash=submission.body_hash,
        physical_name=submission.physical_name,
        resource=submission.target,
        task_id=str(uuid.uuid4()),
        not_before=submission.not_before,
        deadline=submission.deadline,
        queued_at=now if status == RequestStatus.QUEUED else None,
        # Stamped now rather than written after the publish; a failed publish clears it.
        published_at=now if publish else None,
        stack=stack,
        stack_member=stack_member,
        ttl=submission.ttl,
        expires_at=submission.expires_at,
    )
    if stack is not None:
        message = f"submitted as member {stack_member} of stack {stack.name} ({stack.pk})"
    elif submission.note:
        message = f"submitted; {submission.note}"
    elif status == RequestStatus.PENDING_APPROVAL:
        message = f"submitted; {submission.environment} requires approval"
    else:
        message = "submitted"
    if note:
        message = f"{note}; {message}"
    event = RequestEvent.objects.create(request=request, from_status="", to_status=status,
                                        actor=actor_name(submission.user), message=message)
    _known_events(request, [event])
    request.task_result = None
    announce_on_commit(request, from_status="", to_status=status, actor=event.actor,
                       message=message)
    if publish and stack is None:
        publish_recorded_on_commit(request)
    if status == RequestStatus.PENDING_APPROVAL:
        publish_plan_on_commit(request)
    return request


def _known_events(request: ResourceRequest, events: list[RequestEvent]) -> None:
    """Give `request.events.all()` the events in hand, as prefetch_related would have."""
    known = request.events.all()
    known._result_cache = events
    known._prefetch_done = True
    request._prefetched_objects_cache = {"events": known}


def request_approve(*, request_id: Any, user: AbstractBaseUser) -> ResourceRequest:
    """An operator lets a request that waits for approval go ahead."""
    request = _get(request_id, user=user)
    if not user.has_perm(APPROVE_PERMISSION):
        raise NotAllowed("approving requests needs the approve_resourcerequest permission")
    if request.requested_by_id == user.pk:
        raise NotAllowed("a requester cannot approve their own request", "self_approval")
    if request.status == RequestStatus.PENDING_APPROVAL and request.deadline and (
        request.deadline <= timezone.now()
    ):
        # Too late to run: approving it now would start what its requester no longer
        # waits for. It ends expired (as the sweep would have made it), never queued.
        why = (f"approved by {actor_name(user)} after its deadline "
               f"{request.deadline.isoformat()}; expired instead of queued")
        transitions.expire(request.pk, actor=actor_name(user), why=why)
        raise Conflict(
            f"request {request_id} is past its deadline ({request.deadline.isoformat()}) "
            "and is now expired; submit a new request", "past_deadline",
        )
    if request.status == RequestStatus.PENDING_APPROVAL and request.plan is None:
        # Approving approves a plan: there is none to approve yet. Ask for it again, in
        # case its first asking was lost.
        publish_plan_on_commit(request)
        raise Conflict(
            f"request {request_id} has no plan yet: a worker of {request.environment} plans "
            "it (what it will change) before it can be approved; try again once its plan "
            "shows", "not_planned")
    # pending_approval is itself in flight, so approving cannot put a second request in
    # flight; the constraint is mapped all the same, should that ever change.
    with _one_in_flight(request), transaction.atomic():
        request = transitions.approve(request.pk, actor=actor_name(user), plan=request.plan)
        publish_on_commit(request)
    return request


def request_cancel(*, request_id: Any, user: AbstractBaseUser, reason: str = "") -> ResourceRequest:
    """Withdraw a request that has not started."""
    request = _get(request_id, user=user)
    return transitions.cancel(request.pk, actor=actor_name(user), reason=reason)


@inject
def request_retry(
    *, request_id: Any, user: AbstractBaseUser,
    settings: KrpSettings = Provide[CoreContainer.settings],
) -> ResourceRequest:
    """Run a failed, cancelled or expired request again, with a fresh attempt budget.

    In an environment that requires approval the request waits for approval again: a
    retry is a new change, and cancel-then-retry must not be a way around approval. Nor
    around a quota: it is refused beyond one (or waits for approval, where the environment
    auto-approves within quota) as a new submission would be.
    """
    request = _get(request_id, user=user)
    environment = known_environment(settings=settings, name=request.environment)
    needs_approval = environment.requires_approval
    # Its status first: a request that succeeded is told so, not that its resource exists.
    transitions.refuse_retry(request)
    _check_retry_target(request)
    if request.deadline and request.deadline <= timezone.now():
        raise Conflict(
            f"request {request_id} is past its deadline ({request.deadline.isoformat()}); "
            "submit a new request", "past_deadline",
        )
    # The check above names the request in flight; a race past it meets the constraint.
    with _one_in_flight(request), transaction.atomic():
        # Back in flight, it counts against its team's quotas as a new submission would.
        needs_approval = quota_admit_retry(request, environment=environment,
                                           needs_approval=needs_approval)
        request = transitions.retry(request.pk, actor=actor_name(user),
                                    needs_approval=needs_approval)
        if needs_approval:
            publish_plan_on_commit(request)
        else:
            publish_on_commit(request)
    return request


@contextmanager
def _one_in_flight(request: ResourceRequest) -> Iterator[None]:
    """Map the one-in-flight constraint, met while moving `request` back in flight, to
    the Conflict a submission gets."""
    try:
        yield
    except IntegrityError:
        raise in_flight_conflict(environment=request.environment,
                                 resource_type=request.resource_type, name=request.name,
                                 team=request.team, excluding=request.pk) from None


def _check_retry_target(request: ResourceRequest) -> None:
    """A retry is refused where a new submission of the same change would be."""
    where = f"{request.resource_type} {request.environment}/{request.name}"
    same = {"environment": request.environment, "resource_type": request.resource_type,
            "name": request.name}
    if selectors.request_in_flight(**same, excluding=request.pk) is not None:
        raise in_flight_conflict(**same, team=request.team, excluding=request.pk)
    live = selectors.resource_live(**same)
    # A create that was making a missing resource again may try again; any other create
    # meets a resource that exists now.
    recreating = live is not None and live.status == ResourceStatus.MISSING and (
        live.pk == request.resource_id)
    making = request.action in (RequestAction.CREATE, RequestAction.IMPORT)
    if making and live is not None and not recreating:
        raise Conflict(f"{where} exists now; submit an update instead", "already_exists")
    if not making:
        if live is None or live.pk != request.resource_id:
            raise Conflict(f"{where} is gone; nothing to {request.action}", "unknown_resource")
        if request.action == RequestAction.UPDATE and live.updated_at > request.created_at:
            raise Conflict(f"{where} has changed since this update was asked for; submit a "
                           "new update so it does not undo the later change", "stale_update")


def _get(request_id: Any, *, user: AbstractBaseUser) -> ResourceRequest:
    """The request, if it is one of the user's teams' (any for a superuser): the same
    scope as the API's, whichever surface asks."""
    try:
        return selectors.visible_to(ResourceRequest.objects.select_related("team"),
                                    user=user).get(pk=request_id)
    except (ResourceRequest.DoesNotExist, ValidationError, ValueError, TypeError):
        raise NotFound(f"request {request_id} does not exist") from None


def _replay(user, idempotency_key: str, body_hash: str, *,
            context: selectors.SubmissionContext | None = None) -> ResourceRequest | None:
    """The user's request under `idempotency_key` if `body_hash` is its body's (else a
    Conflict), as the API shows it; None if there is none. `context`: as
    submission_context read it, so that neither the request nor the teams are looked for
    again."""
    requests = selectors.request_detail(user=None).filter(requested_by=user.pk)
    if context is None:
        first = requests.filter(idempotency_key=idempotency_key).first()
    elif context.replay_id is None:
        return None
    else:
        first = requests.filter(pk=context.replay_id).first()
    if first is None:
        return None
    teams = ({team.pk for team in context.teams} if context is not None
             else set(user.groups.values_list("pk", flat=True)))
    if not (user.is_superuser or first.team_id in teams):
        # The requester has left the request's team: it is not theirs to see any more,
        # as GET says too.
        raise NotFound(f"Idempotency-Key {idempotency_key!r} names a request that is not "
                       "among your teams' any more")
    if first.body_hash != body_hash:
        raise Conflict(
            f"Idempotency-Key {idempotency_key!r} was already used for request {first.pk} "
            "with a different body; use a new key for a new request",
            "idempotency_key_reused",
        )
    return first
