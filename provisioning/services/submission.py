"""A submission: the checks a new request passes before it is recorded.

Against the settings (a known environment), the resource type (name, spec), the user's
teams, and what KRP holds: the live resource an update or delete acts on, the requests in
flight on it, and the resources a spec refers to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, Group
from django.utils import timezone

from containers.settings import EnvironmentSettings, KrpSettings
from provisioning import selectors
from provisioning.errors import Conflict, InvalidRequest, NotAllowed, Problems
from provisioning.models import (
    GONE_STATUSES,
    RequestAction,
    RequestStatus,
    Resource,
    ResourceRequest,
    ResourceStatus,
    Stack,
)
from provisioning.resources import resource_type as lookup_type
from provisioning.resources.base import KRP_TAG_PREFIX, ResourceType, SpecModel
from provisioning.services.lifetimes import requested_lifetime

MAX_USER_TAGS = 40
T = TypeVar("T")


@dataclass(frozen=True)
class Submission:
    """A request that passed every check, as it will be recorded."""

    user: AbstractBaseUser
    environment: str
    resource_type: str
    name: str
    action: str
    spec: dict[str, Any]  # as stored: the whole parsed spec, or {} for a delete
    tags: dict[str, str]
    team: Group
    target: Resource | None  # the live resource an update or delete acts on
    physical_name: str
    not_before: datetime | None
    deadline: datetime | None
    idempotency_key: str | None
    body_hash: str
    requires_approval: bool
    # Why it is queued or waits, where something other than the environment decided it
    # (services.quotas): said in its first event.
    note: str = ""
    # The lifetime it asks for (one or neither), applied when it succeeds.
    ttl: timedelta | None = None
    expires_at: datetime | None = None

    @property
    def status(self) -> str:
        return RequestStatus.PENDING_APPROVAL if self.requires_approval else RequestStatus.QUEUED


def submission_validate(
    *,
    user: AbstractBaseUser,
    environment: Any,
    resource_type: Any,
    name: Any,
    spec: Any,
    action: Any,
    tags: Any,
    team: Group | str | None,
    not_before: datetime | None,
    deadline: datetime | None,
    idempotency_key: str | None,
    body_hash: str,
    settings: KrpSettings,
    context: selectors.SubmissionContext,
    refused: Mapping[str, Sequence[str]] | None = None,
    physical_name: Any = None,
    ttl: Any = None,
    expires_at: Any = None,
    ttl_required: bool = True,
) -> Submission:
    """Check a submission against the settings, the inventory and the requests in flight.

    Every problem of the input is reported at once, each under its field: `refused` holds
    those the caller already found in the body's shape (the fields it names are not checked
    again). Only input that passes meets the checks of state (already exists, in flight,
    another team's), which answer one at a time.

    Run it inside the transaction that records it: it locks the live resource it decides
    on, so no other submission changes that resource in between. `context` is what
    selectors.submission_context read for it (the user's teams, the live resource's and an
    in-flight request's ids). `ttl_required`: whether an environment's requires_ttl
    applies (not to a stack's members, which a stack document cannot give one).
    """
    problems = Problems(refused or {})
    skip = {re.split(r"[.\[]", field, maxsplit=1)[0] for field in refused or {}}

    def checked(field: str, check: Callable[..., T], /, *args: Any, **kwargs: Any) -> T | None:
        return None if field in skip else problems.check(check, *args, **kwargs)

    env = checked("environment", known_environment, settings=settings, name=environment)
    kind = checked("resource_type", lookup_type, resource_type)
    named = kind is not None and checked("name", kind.validate_name, name) is not None
    known_action = checked("action", _action, action)
    user_tags = checked("tags", checked_tags, tags) or {}
    problems.check(_schedule, None if "not_before" in skip else not_before,
                   None if "deadline" in skip else deadline,
                   horizon=timedelta(days=settings.not_before_horizon_days))
    chosen_team = checked("team", choose_team, context.teams, team)
    lifetime = (None, None)
    if not skip & {"ttl", "expires_at"}:
        lifetime = problems.check(
            requested_lifetime, ttl=ttl, expires_at=expires_at, action=known_action,
            environment=env, now=timezone.now(), required=ttl_required) or lifetime

    live = None
    if (context.live_id is not None and env is not None and kind is not None and named
            and known_action is not None):
        live = selectors.resource_live(environment=env.name, resource_type=kind.name,
                                       name=name, for_update=True)
    if live is not None and any(lifetime) and known_action == RequestAction.UPDATE:
        problems.check(_not_a_stack_member, live)
    parsed: SpecModel | None = None
    physical: str | None = None
    importing = known_action == RequestAction.IMPORT
    if importing and env is not None and kind is not None:
        physical = problems.check(_importable, kind, physical_name, env.name, settings)
    elif physical_name is not None:
        problems.add(InvalidRequest.about("physical_name", "only an import names an existing "
                                          "resource", "invalid_physical_name"))
    if kind is not None and known_action is not None and "spec" not in skip:
        if importing:
            if spec:
                problems.add(InvalidRequest.about(
                    "spec", "an import takes no spec: it is read from the resource",
                    "invalid_spec"))
        elif known_action == RequestAction.DELETE:
            if spec:
                problems.add(InvalidRequest.about("spec", "a delete request takes no spec",
                                                  "invalid_spec"))
        elif known_action == RequestAction.CREATE or (
            live is not None and chosen_team is not None and live.team_id == chosen_team.pk
        ):
            current = live if known_action == RequestAction.UPDATE else None
            parsed = problems.check(_desired_spec, kind, current, spec)
        if parsed is not None and env is not None:
            problems.check(_check_references, env.name, kind.references(parsed))
            if known_action == RequestAction.CREATE and named:
                physical = problems.check(
                    kind.physical_name, prefix=settings.name_prefix, environment=env.name,
                    name=name, spec=parsed)
    problems.raise_any()
    assert env is not None and kind is not None and known_action is not None
    assert chosen_team is not None

    target = _target(env.name, kind.name, name,
                     RequestAction.CREATE if importing else known_action, chosen_team,
                     live=live,
                     pending_id=context.pending_id)
    stored_spec: dict[str, Any] = {}
    if known_action == RequestAction.DELETE:
        check_no_dependents(environment=env.name, resource_type=kind.name, name=name)
        parsed = kind.parse_spec(target.spec)
    elif importing:
        stored_spec = {}
    else:
        assert parsed is not None
        stored_spec = parsed.model_dump(mode="json")
    if known_action not in (RequestAction.CREATE, RequestAction.IMPORT) and tags is None:
        user_tags = _user_tags(target.tags)
    return Submission(
        user=user, environment=env.name, resource_type=kind.name, name=name,
        action=known_action, spec=stored_spec, tags=user_tags, team=chosen_team,
        target=target,
        # An existing resource keeps the name it was made with, whatever the prefix
        # setting says now.
        # A create of a resource reconcile found missing makes it again under its
        # inventory row, with the name a create gets now.
        physical_name=(target.physical_name if target is not None
                       and known_action not in (RequestAction.CREATE, RequestAction.IMPORT)
                       else physical),
        not_before=not_before, deadline=deadline, idempotency_key=idempotency_key or None,
        body_hash=body_hash, requires_approval=env.requires_approval,
        ttl=lifetime[0], expires_at=lifetime[1],
    )


def _importable(kind: ResourceType, given: Any, environment: str,
                settings: KrpSettings) -> str:
    """The physical name an import names (its name in AWS, or its ARN), if no live resource
    KRP manages holds it already."""
    if not isinstance(given, str) or not given:
        raise InvalidRequest.about("physical_name", "an import names the existing resource: "
                                   "its name in AWS, or its ARN", "invalid_physical_name")
    physical = kind.import_name(given, prefix=settings.name_prefix, environment=environment)
    managed = Resource.objects.filter(
        environment=environment, resource_type=kind.name, physical_name=physical,
    ).exclude(status__in=sorted(GONE_STATUSES)).first()
    if managed is not None:
        raise InvalidRequest.about(
            "physical_name", f"{kind.name} {physical} is already managed by KRP as "
            f"{environment}/{managed.name}", "already_managed")
    return physical


def _not_a_stack_member(resource: Any) -> None:
    """A stack's member lives and expires with its stack (others may refer to it): an
    update may not give it an expiry of its own. Read only when an update asks for one."""
    stack = (Stack.objects.filter(member_requests__pk=resource.created_by_request_id)
             .values_list("pk", flat=True).first())
    if stack is not None:
        raise InvalidRequest.about(
            "ttl", f"{resource} is a member of stack {stack} and expires with it; extend "
            f"the stack (POST /api/v1/stacks/{stack}/extend/)", "stack_member")


def _action(action: Any) -> str:
    if action not in RequestAction.values:
        raise InvalidRequest.about(
            "action", f"{action!r} is not one of {', '.join(RequestAction.values)}",
            "invalid_action",
        )
    return action


def _desired_spec(kind: ResourceType, current: Resource | None, spec: Any) -> SpecModel:
    """The spec a create or update asks for, checked. An update names what changes; the
    rest of the resource's spec stays as it is, and what is fixed at creation must not
    change."""
    desired = spec if spec is not None else {}
    if current is not None and isinstance(desired, dict):
        desired = {**current.spec, **desired}
    parsed = kind.parse_spec(desired)
    if current is not None:
        kind.check_update(kind.parse_spec(current.spec), parsed)
    return parsed


def known_environment(*, settings: KrpSettings, name: Any) -> EnvironmentSettings:
    """The settings of the environment a request names; refuse one KRP does not know."""
    try:
        return settings.environment(name)
    except KeyError:
        raise InvalidRequest.about(
            "environment",
            f"{name!r} is not a known environment (known: "
            f"{', '.join(settings.environment_names)})",
            "unknown_environment",
        ) from None


def checked_tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidRequest.about("tags", "must be an object of string keys and values",
                                  "invalid_tags")
    problems: dict[str, list[str]] = {}
    for key, value in tags.items():
        if not isinstance(value, str):
            problems[f"tags.{key}"] = ["must be a string"]
        # AWS reserves aws: in any case (AWS:, Aws:); it would refuse the tag later. KRP's
        # own prefix likewise: a Krp:team next to krp:team would read as two owners.
        elif key.lower().startswith((KRP_TAG_PREFIX, "aws:")):
            problems[f"tags.{key}"] = ["keys starting with krp: or aws: are reserved"]
        elif not 1 <= len(key) <= 128 or len(value) > 256:
            problems[f"tags.{key}"] = ["keys are 1-128 characters, values up to 256"]
    if len(tags) > MAX_USER_TAGS:
        problems["tags"] = [f"at most {MAX_USER_TAGS} tags"]
    if problems:
        raise InvalidRequest.about_each(problems, "invalid_tags")
    return dict(tags)


def _user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith(KRP_TAG_PREFIX)}


def _schedule(not_before: datetime | None, deadline: datetime | None, *,
              horizon: timedelta) -> None:
    problems: dict[str, list[str]] = {}
    for field, moment in (("not_before", not_before), ("deadline", deadline)):
        # A time without a zone means a different moment on every host that reads it.
        if moment is not None and timezone.is_naive(moment):
            problems[field] = ["must include a time zone (e.g. 2026-12-01T09:00:00Z or +09:00)"]
    if problems:
        raise InvalidRequest.about_each(
            problems, "invalid_" + next(iter(problems)) if len(problems) == 1 else None)
    now = timezone.now()
    if not_before is not None and not_before > now + horizon:
        problems["not_before"] = [
            f"at most {horizon.days} days ahead (KRP_NOT_BEFORE_HORIZON_DAYS)"]
    if deadline is not None and deadline <= now:
        problems["deadline"] = ["must be in the future"]
    elif deadline is not None and not_before is not None and deadline <= not_before:
        problems["deadline"] = ["must be after not_before"]
    if problems:
        raise InvalidRequest.about_each(
            problems, "invalid_" + next(iter(problems)) if len(problems) == 1 else None)


def choose_team(teams: list[Group], team: Group | str | None) -> Group:
    if isinstance(team, str):
        chosen = next((group for group in teams if group.name == team), None)
        if chosen is None:
            raise InvalidRequest.about("team", f"you are not a member of {team!r}",
                                      "invalid_team")
        return chosen
    if isinstance(team, Group):
        if team not in teams:
            raise InvalidRequest.about("team", f"you are not a member of {team.name!r}",
                                      "invalid_team")
        return team
    if not teams:
        raise NotAllowed("you belong to no team; ask an administrator to add you to one",
                         "no_team")
    if len(teams) > 1:
        raise InvalidRequest.about(
            "team", f"you belong to {', '.join(sorted(g.name for g in teams))}; say which",
            "invalid_team",
        )
    return teams[0]


def _target(environment: str, type_name: str, name: str, action: str,
            team: Group, *, live: Resource | None, pending_id: Any) -> Resource | None:
    """The live resource a request acts on (`live`, looked up and locked by the caller);
    refuse a create of one that exists, or an update/delete of one that does not, or a
    second change while one is in flight (`pending_id`, as the caller found it; one that
    starts after that look meets the in-flight constraint when it is recorded)."""
    where = f"{type_name} {environment}/{name}"
    # Names are unique per environment, so that a name is taken cannot be hidden from
    # other teams; the ids of their requests and resources are.
    if pending_id is not None:
        raise in_flight_conflict(
            environment=environment, resource_type=type_name, name=name, team=team,
            pending=ResourceRequest.objects.filter(pk=pending_id).first())
    if action == RequestAction.CREATE:
        if live is not None and live.status == ResourceStatus.MISSING:
            if live.team_id != team.pk:
                raise NotAllowed(f"{where} is another team's (missing from the cloud); they "
                                 "may create it again, or an operator may forget it",
                                 "other_team")
            return live  # gone behind KRP's back: this create makes it again
        if live is not None:
            which = f"resource {live.pk}" if live.team_id == team.pk else "another team's"
            raise Conflict(f"{where} already exists ({which}); submit an update",
                           "already_exists")
        return None
    if live is None:
        raise InvalidRequest.about("name", f"{where} does not exist; create it first",
                                   "unknown_resource")
    if live.team_id != team.pk:
        raise NotAllowed(f"{where} belongs to another team", "other_team")
    if action == RequestAction.UPDATE and live.status == ResourceStatus.MISSING:
        raise Conflict(f"{where} is missing from the cloud (reconcile found it gone); create "
                       "it again (a create of the same name), delete it, or have an operator "
                       "forget it", "resource_missing")
    return live


def in_flight_conflict(*, environment: str, resource_type: str, name: str, team: Group,
                       excluding: Any = None,
                       pending: ResourceRequest | None = None) -> Conflict:
    """The refusal of a second request in flight on a resource. It names the request in
    flight only to its own team: another team's ids are not the caller's to see."""
    if pending is None:
        pending = selectors.request_in_flight(environment=environment,
                                              resource_type=resource_type, name=name,
                                              excluding=excluding)
    where = f"{resource_type} {environment}/{name}"
    if pending is None:  # it finished between the constraint and this look
        which = "another request in flight"
    elif pending.team_id == team.pk:
        which = f"request {pending.pk} in flight ({pending.status})"
    else:
        which = f"another team's request in flight ({pending.status})"
    return Conflict(f"{where} already has {which}; wait for it or cancel it",
                    "request_in_flight")


def submission_check_text(**fields: Any) -> None:
    """Refuse NUL anywhere in what a submission names (PostgreSQL cannot store it, and no
    AWS name takes it) and an over-long idempotency key, naming the field."""
    key = fields.get("idempotency_key")
    if key is not None and not (isinstance(key, str) and len(key) <= 255):
        raise InvalidRequest.about("idempotency_key", "at most 255 characters",
                                   "invalid_idempotency_key")
    for field, value in fields.items():
        if has_nul(value):
            raise InvalidRequest.about(field, "contains a NUL character (\\u0000), which "
                                       "no field accepts", "invalid_" + field)


def has_nul(value: Any) -> bool:
    """Whether a string anywhere in `value` holds NUL, which PostgreSQL cannot store in text
    or jsonb (so it is refused as bad input, not left to fail the INSERT)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def _check_references(environment: str, references: list[tuple[str, str]]) -> None:
    # Locked: a delete of one of them waits for this submission, then counts it among the
    # resource's dependents (check_no_dependents).
    arns = selectors.reference_arns(environment=environment, references=references,
                                    for_update=True)
    problems = []
    for type_name, name in references:
        if (type_name, name) not in arns:
            problems.append(f"refers to {type_name} {name!r}, which KRP does not manage in "
                            f"{environment}")
            continue
        pending = selectors.request_in_flight(environment=environment,
                                              resource_type=type_name, name=name)
        if pending is not None and pending.action == RequestAction.DELETE:
            problems.append(f"refers to {type_name} {name!r}, which is being deleted in "
                            f"{environment}")
    if problems:
        raise InvalidRequest.about_each({"spec": problems}, "unknown_reference")


def check_no_dependents(*, environment: str, resource_type: str, name: str) -> None:
    """Refuse to delete (or forget) a resource another KRP resource refers to: it would
    leave that one broken, and reconcile unable to put it right."""
    dependents = selectors.resource_dependents(environment=environment,
                                               resource_type=resource_type, name=name)
    dependents = sorted({*dependents, *selectors.stack_member_dependents(
        environment=environment, resource_type=resource_type, name=name)})
    if dependents:
        named = ", ".join(f"{kind} {environment}/{dependent}" for kind, dependent in dependents)
        raise Conflict(
            f"{resource_type} {environment}/{name} is referred to by {named}; change or "
            "delete those first", "has_dependents",
        )
