"""What people do to requests: submit, approve, cancel, retry.

The API, the admin and `manage.py krp` all call these; none of them changes a request
any other way.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from dependency_injector.wiring import Provide, inject
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.errors import Conflict, InvalidRequest, NotAllowed
from provisioning.models import (
    IN_FLIGHT_STATUSES,
    RequestAction,
    RequestEvent,
    RequestStatus,
    Resource,
    ResourceRequest,
    ResourceStatus,
)
from provisioning.resources import resource_type as lookup_type
from provisioning.resources.base import KRP_TAG_PREFIX
from provisioning.services.dispatch import publish_on_commit
from provisioning.services.transitions import transition

MAX_USER_TAGS = 40
APPROVE_PERMISSION = "provisioning.approve_resourcerequest"


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
    settings: KrpSettings = Provide[CoreContainer.settings],
) -> tuple[ResourceRequest, bool]:
    """Validate and record a request; publish its job after commit if it needs no approval.

    Returns (request, created). The same idempotency key with the same body returns the
    first request (created False); with a different body it is a Conflict.
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
    }
    body_hash = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    if idempotency_key:
        replay = _replay(user, idempotency_key, body_hash)
        if replay is not None:
            return replay, False

    env = _environment(settings, environment)
    kind = lookup_type(resource_type)
    kind.validate_name(name)
    if action not in RequestAction.values:
        raise InvalidRequest(
            f"action: {action!r} is not one of {', '.join(RequestAction.values)}", "invalid_action"
        )
    user_tags = _tags(tags)
    _schedule(not_before, deadline)
    chosen_team = _team(user, team)

    with transaction.atomic():
        target = _target(env.name, kind.name, name, action, chosen_team)
        if action == RequestAction.DELETE:
            if spec:
                raise InvalidRequest("spec: a delete request takes no spec", "invalid_spec")
            parsed_spec = kind.parse_spec(target.spec)
            stored_spec: dict[str, Any] = {}
        else:
            desired = spec if spec is not None else {}
            if target is not None and isinstance(desired, dict):
                # An update names what changes; the rest of the spec stays as it is.
                desired = {**target.spec, **desired}
            parsed = kind.parse_spec(desired)
            if target is not None:
                kind.check_update(kind.parse_spec(target.spec), parsed)
            _check_references(env.name, kind.references(parsed))
            parsed_spec, stored_spec = parsed, parsed.model_dump(mode="json")
        if action != RequestAction.CREATE and tags is None:
            user_tags = _user_tags(target.tags)
        status = (
            RequestStatus.PENDING_APPROVAL if env.requires_approval else RequestStatus.QUEUED
        )
        now = timezone.now()
        try:
            with transaction.atomic():
                request = ResourceRequest.objects.create(
                    environment=env.name,
                    resource_type=kind.name,
                    name=name,
                    action=action,
                    spec=stored_spec,
                    tags=user_tags,
                    status=status,
                    requested_by=user,
                    team=chosen_team,
                    idempotency_key=idempotency_key or None,
                    body_hash=body_hash,
                    # An existing resource keeps the name it was made with, whatever the
                    # prefix setting says now.
                    physical_name=target.physical_name if target is not None
                    else kind.physical_name(
                        prefix=settings.name_prefix, environment=env.name, name=name,
                        spec=parsed_spec,
                    ),
                    resource=target,
                    task_id=str(uuid.uuid4()),
                    not_before=not_before,
                    deadline=deadline,
                    queued_at=now if status == RequestStatus.QUEUED else None,
                )
        except IntegrityError:
            replay = _replay(user, idempotency_key, body_hash) if idempotency_key else None
            if replay is None:
                raise
            return replay, False
        RequestEvent.objects.create(
            request=request, from_status="", to_status=status, actor=actor_name(user),
            message=(
                f"submitted; {env.name} requires approval"
                if status == RequestStatus.PENDING_APPROVAL else "submitted"
            ),
        )
        if status == RequestStatus.QUEUED:
            publish_on_commit(request)
    return request, True


def request_approve(*, request_id: Any, user: AbstractBaseUser) -> ResourceRequest:
    """An operator lets a request that waits for approval go ahead."""
    if not user.has_perm(APPROVE_PERMISSION):
        raise NotAllowed("approving requests needs the approve_resourcerequest permission")
    request = _get(request_id)
    if request.requested_by_id == user.pk:
        raise NotAllowed("a requester cannot approve their own request", "self_approval")
    with transaction.atomic():
        request = transition(
            request_id, from_statuses=[RequestStatus.PENDING_APPROVAL], to=RequestStatus.QUEUED,
            actor=actor_name(user), message="approved", verb="approve it",
            queued_at=timezone.now(),
        )
        publish_on_commit(request)
    return request


def request_cancel(*, request_id: Any, user: AbstractBaseUser, reason: str = "") -> ResourceRequest:
    """Withdraw a request that has not started."""
    _get(request_id)
    return transition(
        request_id,
        from_statuses=[RequestStatus.PENDING_APPROVAL, RequestStatus.QUEUED],
        to=RequestStatus.CANCELLED,
        actor=actor_name(user),
        message=f"cancelled: {reason}" if reason else "cancelled",
        verb="cancel it",
        finished_at=timezone.now(),
    )


@inject
def request_retry(
    *, request_id: Any, user: AbstractBaseUser,
    settings: KrpSettings = Provide[CoreContainer.settings],
) -> ResourceRequest:
    """Run a failed, cancelled or expired request again, with a fresh attempt budget.

    In an environment that requires approval the request waits for approval again: a
    retry is a new change, and cancel-then-retry must not be a way around approval.
    """
    request = _get(request_id)
    needs_approval = _environment(settings, request.environment).requires_approval
    _check_retry_target(request)
    if request.deadline and request.deadline <= timezone.now():
        raise Conflict(
            f"request {request_id} is past its deadline ({request.deadline.isoformat()}); "
            "submit a new request", "past_deadline",
        )
    with transaction.atomic():
        request = transition(
            request_id,
            from_statuses=[RequestStatus.FAILED, RequestStatus.CANCELLED, RequestStatus.EXPIRED],
            to=RequestStatus.PENDING_APPROVAL if needs_approval else RequestStatus.QUEUED,
            actor=actor_name(user),
            message="retried; waits for approval again" if needs_approval else "retried",
            verb="retry it",
            attempts=0, error_code="", error_message="", task_id=str(uuid.uuid4()),
            published_at=None, next_attempt_at=None, finished_at=None,
            queued_at=None if needs_approval else timezone.now(),
        )
        if not needs_approval:
            publish_on_commit(request)
    return request


def _check_retry_target(request: ResourceRequest) -> None:
    """A retry is refused where a new submission of the same change would be."""
    where = f"{request.resource_type} {request.environment}/{request.name}"
    other = ResourceRequest.objects.filter(
        environment=request.environment, resource_type=request.resource_type,
        name=request.name, status__in=IN_FLIGHT_STATUSES,
    ).exclude(pk=request.pk).first()
    if other is not None:
        raise Conflict(f"{where} has another request in flight ({other.status}); "
                       "wait for it or cancel it", "request_in_flight")
    live = Resource.objects.filter(
        environment=request.environment, resource_type=request.resource_type,
        name=request.name,
    ).exclude(status=ResourceStatus.DELETED).first()
    if request.action == RequestAction.CREATE and live is not None:
        raise Conflict(f"{where} exists now; submit an update instead", "already_exists")
    if request.action != RequestAction.CREATE:
        if live is None or live.pk != request.resource_id:
            raise Conflict(f"{where} is gone; nothing to {request.action}", "unknown_resource")
        if request.action == RequestAction.UPDATE and live.updated_at > request.created_at:
            raise Conflict(f"{where} has changed since this update was asked for; submit a "
                           "new update so it does not undo the later change", "stale_update")


def _get(request_id: Any) -> ResourceRequest:
    try:
        return ResourceRequest.objects.get(pk=request_id)
    except (ResourceRequest.DoesNotExist, ValidationError, ValueError, TypeError):
        raise InvalidRequest(f"request {request_id} does not exist", "not_found") from None


def _replay(user, idempotency_key: str, body_hash: str) -> ResourceRequest | None:
    first = ResourceRequest.objects.filter(
        requested_by=user, idempotency_key=idempotency_key
    ).first()
    if first is None:
        return None
    if first.body_hash != body_hash:
        raise Conflict(
            f"Idempotency-Key {idempotency_key!r} was already used for request {first.pk} "
            "with a different body; use a new key for a new request",
            "idempotency_key_reused",
        )
    return first


def _environment(settings: KrpSettings, name: Any):
    try:
        return settings.environment(name)
    except KeyError:
        raise InvalidRequest(
            f"environment: {name!r} is not a known environment (known: "
            f"{', '.join(settings.environment_names)})",
            "unknown_environment",
        ) from None


def _tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidRequest("tags: must be an object of string keys and values", "invalid_tags")
    problems = []
    for key, value in tags.items():
        if not isinstance(value, str):
            problems.append(f"tags.{key}: must be a string")
        # AWS reserves aws: in any case (AWS:, Aws:); it would refuse the tag later.
        elif key.startswith(KRP_TAG_PREFIX) or key.lower().startswith("aws:"):
            problems.append(f"tags.{key}: keys starting with krp: or aws: are reserved")
        elif not 1 <= len(key) <= 128 or len(value) > 256:
            problems.append(f"tags.{key}: keys are 1-128 characters, values up to 256")
    if len(tags) > MAX_USER_TAGS:
        problems.append(f"tags: at most {MAX_USER_TAGS} tags")
    if problems:
        raise InvalidRequest("; ".join(problems), "invalid_tags")
    return dict(tags)


def _user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith(KRP_TAG_PREFIX)}


def _schedule(not_before: datetime | None, deadline: datetime | None) -> None:
    now = timezone.now()
    if deadline is not None and deadline <= now:
        raise InvalidRequest("deadline: must be in the future", "invalid_deadline")
    if deadline is not None and not_before is not None and deadline <= not_before:
        raise InvalidRequest("deadline: must be after not_before", "invalid_deadline")


def _team(user: AbstractBaseUser, team: Group | str | None) -> Group:
    teams = list(user.groups.all())
    if isinstance(team, str):
        chosen = next((group for group in teams if group.name == team), None)
        if chosen is None:
            raise InvalidRequest(f"team: you are not a member of {team!r}", "invalid_team")
        return chosen
    if isinstance(team, Group):
        if team not in teams:
            raise InvalidRequest(f"team: you are not a member of {team.name!r}", "invalid_team")
        return team
    if not teams:
        raise NotAllowed("you belong to no team; ask an administrator to add you to one",
                         "no_team")
    if len(teams) > 1:
        raise InvalidRequest(
            f"team: you belong to {', '.join(sorted(g.name for g in teams))}; say which",
            "invalid_team",
        )
    return teams[0]


def _target(environment: str, type_name: str, name: str, action: str,
            team: Group) -> Resource | None:
    """The live resource a request acts on; refuse a create of one that exists, or an
    update/delete of one that does not, or a second change while one is in flight."""
    live = (
        Resource.objects.select_for_update()
        .filter(environment=environment, resource_type=type_name, name=name)
        .exclude(status=ResourceStatus.DELETED)
        .first()
    )
    pending = ResourceRequest.objects.filter(
        environment=environment, resource_type=type_name, name=name,
        status__in=IN_FLIGHT_STATUSES,
    ).first()
    where = f"{type_name} {environment}/{name}"
    # Names are unique per environment, so that a name is taken cannot be hidden from
    # other teams; the ids of their requests and resources are.
    if pending is not None:
        which = f"request {pending.pk}" if pending.team_id == team.pk else "another team's request"
        raise Conflict(
            f"{where} already has {which} in flight ({pending.status}); "
            "wait for it or cancel it", "request_in_flight",
        )
    if action == RequestAction.CREATE:
        if live is not None:
            which = f"resource {live.pk}" if live.team_id == team.pk else "another team's"
            raise Conflict(f"{where} already exists ({which}); submit an update",
                           "already_exists")
        return None
    if live is None:
        raise InvalidRequest(f"name: {where} does not exist; create it first",
                             "unknown_resource")
    if live.team_id != team.pk:
        raise NotAllowed(f"{where} belongs to another team", "other_team")
    return live


def _check_references(environment: str, references: list[tuple[str, str]]) -> None:
    for type_name, name in references:
        exists = Resource.objects.filter(
            environment=environment, resource_type=type_name, name=name,
            status__in=[ResourceStatus.ACTIVE, ResourceStatus.DRIFTED],
        ).exists()
        if not exists:
            raise InvalidRequest(
                f"spec: refers to {type_name} {name!r}, which KRP does not manage in "
                f"{environment}", "unknown_reference",
            )
