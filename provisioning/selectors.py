"""Reads: what a user may see, and the lookups the services decide on.

A user sees the requests and resources of their teams only; anything else is, to them,
not there (404, not 403, so ids do not leak).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, NullIf

from provisioning.errors import InvalidRequest
from provisioning.filtersets import (
    QuotaFilterSet,
    RequestFilterSet,
    ResourceFilterSet,
    StackFilterSet,
)
from provisioning.models import (
    GONE_STATUSES,
    IN_FLIGHT_STATUSES,
    NotificationChannel,
    Quota,
    RequestAction,
    RequestStatus,
    Resource,
    ResourceRequest,
    ResourceStatus,
    Stack,
    StackAction,
    StackMember,
    StackStatus,
)
from provisioning.resources import REGISTRY

# What another resource's spec may refer to: a resource KRP manages and believes is there.
REFERABLE_STATUSES = [ResourceStatus.ACTIVE, ResourceStatus.DRIFTED]
# The lists' orders. Each ends with the primary key, so no two rows tie: the API pages them
# by cursor (api/pagination.py), and indexes on these columns serve them at any depth.
REQUEST_ORDERING = ("-created_at", "-id")
RESOURCE_ORDERING = ("environment", "resource_type", "name", "id")
STACK_ORDERING = ("-created_at", "-id")


def visible_to(queryset: QuerySet, *, user: AbstractBaseUser, team: str = "team") -> QuerySet:
    """Only the rows of the user's teams (every team's for a superuser)."""
    if user.is_superuser:
        return queryset
    return queryset.filter(**{f"{team}__in": user.groups.all()})


def _of_teams(queryset: QuerySet, *, user: AbstractBaseUser) -> QuerySet:
    """visible_to for a list, with the team ids as values rather than a subquery: for a
    user in one team the database then reads the page in order from the list's index that
    leads with the team, rather than walking every team's rows and dropping the others'."""
    if user.is_superuser:
        return queryset
    return queryset.filter(team__in=list(user.groups.values_list("pk", flat=True)))


def _filtered(queryset: QuerySet, filterset_class: type, filters: Mapping[str, Any] | None,
              ) -> QuerySet:
    if not filters:
        return queryset
    filterset = filterset_class(filters, queryset=queryset)
    # An invalid value (an unknown status) would otherwise be ignored and list everything.
    if not filterset.is_valid():
        raise InvalidRequest.about_each(
            {field: [" ".join(errors)] for field, errors in filterset.errors.items()},
            "invalid_filter",
        )
    return filterset.qs


def request_list(*, user: AbstractBaseUser | None,
                 filters: Mapping[str, Any] | None = None) -> QuerySet[ResourceRequest]:
    """Requests of the user's teams (every team's for a superuser), newest first.

    `user=None` lists every team's, for operators at the command line; `filters` are those
    of RequestFilterSet (environment, resource_type, name, status, action, team).
    """
    requests = ResourceRequest.objects.select_related("team", "requested_by", "resource")
    if user is not None:
        requests = _of_teams(requests, user=user)
    return _filtered(requests.order_by(*REQUEST_ORDERING), RequestFilterSet, filters)


def request_detail(*, user: AbstractBaseUser | None) -> QuerySet[ResourceRequest]:
    return request_list(user=user).prefetch_related("events")


def resource_list(*, user: AbstractBaseUser,
                  filters: Mapping[str, Any] | None = None) -> QuerySet[Resource]:
    """The inventory of the user's teams (every team's for a superuser); `filters` are
    those of ResourceFilterSet."""
    resources = Resource.objects.select_related("team", "created_by_request")
    resources = _of_teams(resources, user=user).order_by(*RESOURCE_ORDERING)
    return _filtered(resources, ResourceFilterSet, filters)


def stack_list(*, user: AbstractBaseUser | None,
               filters: Mapping[str, Any] | None = None) -> QuerySet[Stack]:
    """Stacks of the user's teams (every team's for a superuser or `user=None`), newest
    first; `filters` are those of StackFilterSet."""
    stacks = Stack.objects.select_related("team", "requested_by", "approved_by",
                                          "blueprint__blueprint")
    if user is not None:
        stacks = _of_teams(stacks, user=user)
    return _filtered(stacks.order_by(*STACK_ORDERING), StackFilterSet, filters)


MAKING = (RequestAction.CREATE, RequestAction.IMPORT)
# A stack in one of these will record its waiting members' create requests.
RESERVING_STACK_STATUSES = (StackStatus.PENDING_APPROVAL, StackStatus.RUNNING)


@dataclass(frozen=True)
class QuotaUse:
    """A quota and what its team holds under it now."""

    quota: Quota
    live: int  # resources not gone
    being_created: int  # create/import requests in flight, stack members yet to record
    in_flight: int  # requests in flight (any action), stack members yet to record

    @property
    def held(self) -> int:
        """What counts against max_live."""
        return self.live + self.being_created


def _count(queryset: QuerySet, group_by: str) -> Coalesce:
    """The rows of `queryset` (correlated to one quota's team), as a subquery."""
    counted = queryset.order_by().values(group_by).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), 0)


def use_annotations() -> dict[str, Coalesce]:
    """Each quota's use, as annotations of a Quota queryset: `live_resources`,
    `creating_requests`, `in_flight_requests` and `waiting_members` (a stack's members not
    yet recorded, which will be created: they count as being created and as in flight)."""

    def scope(field: str, outer: str) -> Coalesce:
        # The quota's value, or (blank: any) the row's own, which always matches.
        return Coalesce(NullIf(OuterRef(outer), Value("")), F(field))

    def where(prefix: str = "") -> dict[str, Any]:
        return {f"{prefix}team": OuterRef("team"),
                f"{prefix}environment": scope(f"{prefix}environment", "environment"),
                "resource_type": scope("resource_type", "resource_type")}

    in_flight = ResourceRequest.objects.filter(status__in=sorted(IN_FLIGHT_STATUSES),
                                               **where())
    return {
        "live_resources": _count(
            Resource.objects.filter(**where()).exclude(status__in=sorted(GONE_STATUSES)),
            "team"),
        # A create of a resource reconcile found missing already has its inventory row.
        "creating_requests": _count(in_flight.filter(action__in=MAKING, resource__isnull=True),
                                    "team"),
        "in_flight_requests": _count(in_flight, "team"),
        "waiting_members": _count(
            StackMember.objects.filter(state=StackMember.State.WAITING,
                                       stack__status__in=RESERVING_STACK_STATUSES,
                                       stack__action=StackAction.CREATE, **where("stack__")),
            "stack__team"),
    }


def use_of(quota: Quota) -> QuotaUse:
    """A Quota read with use_annotations, as a QuotaUse."""
    return QuotaUse(quota=quota, live=quota.live_resources,
                    being_created=quota.creating_requests + quota.waiting_members,
                    in_flight=quota.in_flight_requests + quota.waiting_members)


QUOTA_ORDERING = ("team", "environment", "resource_type", "id")


def quota_list(*, user: AbstractBaseUser | None,
               filters: Mapping[str, Any] | None = None) -> QuerySet:
    """The quotas of the user's teams (every team's for a superuser, an operator who may
    change quotas, or `user=None`), each with what its team holds under it
    (services.quotas.use_annotations; read it with use_of); `filters` are those of
    QuotaFilterSet (team, environment, resource_type)."""
    quotas = Quota.objects.select_related("team").annotate(**use_annotations())
    if user is not None and not user.has_perm("provisioning.change_quota"):
        quotas = _of_teams(quotas, user=user)
    return _filtered(quotas.order_by(*QUOTA_ORDERING), QuotaFilterSet, filters)


def stack_detail(*, user: AbstractBaseUser | None) -> QuerySet[Stack]:
    """stack_list's stacks with their members (and their requests) and events."""
    from django.db.models import Prefetch

    members = StackMember.objects.select_related("request__resource", "delete_request")
    return stack_list(user=user).prefetch_related(Prefetch("members", queryset=members),
                                                  "events")


def member_status(member: StackMember) -> str:
    """What a stack member shows: its deletion's progress once it has a delete request
    (deleting, deleted, delete_failed), else its create request's status (or deleted, when
    its resource was deleted on its own since), else its own state (waiting, cancelled,
    refused)."""
    deleting = member.delete_request
    if deleting is not None:
        if deleting.status == RequestStatus.SUCCEEDED:
            return "deleted"
        return "deleting" if deleting.status in IN_FLIGHT_STATUSES else "delete_failed"
    request = member.request
    if request is not None:
        gone = request.status == RequestStatus.SUCCEEDED and request.resource is not None and (
            request.resource.status in GONE_STATUSES)
        return "deleted" if gone else request.status
    return member.state


def resource_live(*, environment: str, resource_type: str, name: str,
                  for_update: bool = False) -> Resource | None:
    """The resource of that name that has not been deleted (at most one: a constraint).

    `for_update` locks the row until the transaction ends, so a submission decides on a
    resource no other submission is changing.
    """
    resources = Resource.objects.select_for_update() if for_update else Resource.objects
    return (
        resources.filter(environment=environment, resource_type=resource_type, name=name)
        .exclude(status__in=GONE_STATUSES)
        .first()
    )


def request_in_flight(*, environment: str, resource_type: str, name: str,
                      excluding: Any = None) -> ResourceRequest | None:
    """A request on that resource that has not finished (waiting, queued or running),
    other than `excluding` (a request's id)."""
    requests = ResourceRequest.objects.filter(
        environment=environment, resource_type=resource_type, name=name,
        status__in=IN_FLIGHT_STATUSES,
    )
    if excluding is not None:
        requests = requests.exclude(pk=excluding)
    return requests.first()


@dataclass(frozen=True)
class SubmissionContext:
    """What a submission decides on, read in one query (ids only, nothing locked)."""

    teams: list[Group]
    replay_id: Any = None  # the user's request under the same idempotency key
    live_id: Any = None  # the live resource of that name
    pending_id: Any = None  # a request in flight on it
    # The teams (ids) that have a quota covering the environment and type named.
    quota_team_ids: frozenset[int] = frozenset()


def submission_context(*, user: AbstractBaseUser, idempotency_key: str | None,
                       environment: Any, resource_type: Any, name: Any) -> SubmissionContext:
    """The user's teams, each row also carrying the ids a submission decides on: the
    request its idempotency key already names, the live resource of that name and a
    request in flight on it; and whether the team has a quota there (services.quotas). One
    query on the accept path instead of five. Each team also carries `notifies`: whether
    it has an enabled notification channel, so announcing the submission costs a team
    without one no query at all (services.notifications).

    Nothing is locked: the submission locks the live resource before it decides on it, and
    the in-flight constraint decides a race with another submission. Written in SQL: the
    ORM spent more time composing this query than the database spends answering it.
    """
    names = (environment, resource_type, name)
    target = list(names) if all(isinstance(value, str) for value in names) else [None] * 3
    gone = [str(status) for status in sorted(GONE_STATUSES)]
    in_flight = [str(status) for status in sorted(IN_FLIGHT_STATUSES)]
    teams = list(Group.objects.raw(
        _SUBMISSION_CONTEXT_SQL.format(gone=_placeholders(gone),
                                       in_flight=_placeholders(in_flight)),
        [user.pk, idempotency_key, *target, *gone, *target, *in_flight, *target[:2],
         user.pk]))
    if teams:
        first = teams[0]
        return SubmissionContext(teams=teams, replay_id=_uuid(first.replay_id),
                                 live_id=_uuid(first.live_id),
                                 pending_id=_uuid(first.pending_id),
                                 quota_team_ids=frozenset(team.pk for team in teams
                                                          if team.has_quota))
    # In no team, no submission is recorded; only a replay of an earlier one may answer.
    replay = ResourceRequest.objects.filter(requested_by=user.pk,
                                            idempotency_key=idempotency_key)
    return SubmissionContext(teams=[], replay_id=(
        replay.values_list("pk", flat=True).first() if idempotency_key else None))


def submission_context_for(*, user: AbstractBaseUser, team: Group,
                           idempotency_key: str | None, environment: str, resource_type: str,
                           name: str) -> SubmissionContext:
    """submission_context for a system user acting for `team` without being a member of
    it (the expiry sweep): the same ids, with `team` as its one team."""
    replay = (ResourceRequest.objects.filter(requested_by=user.pk,
                                             idempotency_key=idempotency_key)
              .values_list("pk", flat=True).first() if idempotency_key else None)
    live = resource_live(environment=environment, resource_type=resource_type, name=name)
    pending = request_in_flight(environment=environment, resource_type=resource_type,
                                name=name)
    return SubmissionContext(teams=[team], replay_id=replay,
                             live_id=live.pk if live else None,
                             pending_id=pending.pk if pending else None)


_SUBMISSION_CONTEXT_SQL = f"""
SELECT team.id, team.name,
  (SELECT request.id FROM {ResourceRequest._meta.db_table} request
    WHERE request.requested_by_id = %s AND request.idempotency_key = %s LIMIT 1) AS replay_id,
  (SELECT resource.id FROM {Resource._meta.db_table} resource
    WHERE resource.environment = %s AND resource.resource_type = %s AND resource.name = %s
      AND resource.status NOT IN ({{gone}}) LIMIT 1) AS live_id,
  (SELECT request.id FROM {ResourceRequest._meta.db_table} request
    WHERE request.environment = %s AND request.resource_type = %s AND request.name = %s
      AND request.status IN ({{in_flight}}) LIMIT 1) AS pending_id,
  EXISTS (SELECT 1 FROM {Quota._meta.db_table} quota
    WHERE quota.team_id = team.id AND quota.environment IN (%s, '')
      AND quota.resource_type IN (%s, '')) AS has_quota,
  EXISTS (SELECT 1 FROM {NotificationChannel._meta.db_table} channel
    WHERE channel.team_id = team.id AND channel.enabled) AS notifies
FROM {Group._meta.db_table} team
JOIN {Group.user_set.through._meta.db_table} member ON member.group_id = team.id
WHERE member.user_id = %s
ORDER BY team.name
"""


def _placeholders(values: list[str]) -> str:
    return ", ".join(["%s"] * len(values))


def _uuid(value: Any) -> uuid.UUID | None:
    # PostgreSQL answers a UUID; SQLite the 32 hex digits it stores.
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def request_holds_lease(*, request_id: Any, worker_id: str) -> bool:
    """Whether the request is still running under this worker's lease."""
    return ResourceRequest.objects.filter(
        pk=request_id, status=RequestStatus.RUNNING, lease_owner=worker_id
    ).exists()


def reference_arns(*, environment: str, references: Iterable[tuple[str, str]],
                   for_update: bool = False) -> dict[tuple[str, str], str]:
    """The ARN of each (resource type, name) referred to that KRP manages in the
    environment and believes is there; those it does not are absent from the answer.

    `for_update` locks those rows until the transaction ends, so a delete of one waits for
    the submission that refers to it, and then sees it among its dependents.
    """
    wanted = list(references)
    if not wanted:
        return {}
    condition = Q(pk__in=[])
    for resource_type, name in wanted:
        condition |= Q(resource_type=resource_type, name=name)
    resources = Resource.objects.select_for_update() if for_update else Resource.objects
    return {
        (ref.resource_type, ref.name): ref.arn
        for ref in resources.filter(
            environment=environment, status__in=REFERABLE_STATUSES
        ).filter(condition)
    }


def referable(*, environment: str, types: Iterable[str]) -> list[tuple[str, str]]:
    """(type, name) of every resource of `types` in the environment a spec may refer to."""
    return list(Resource.objects.filter(
        environment=environment, resource_type__in=list(types),
        status__in=REFERABLE_STATUSES).values_list("resource_type", "name"))


def resource_dependents(*, environment: str, resource_type: str,
                        name: str) -> list[tuple[str, str]]:
    """(type, name) of each other KRP resource in the environment whose spec refers to
    this one: a live resource of the inventory, or a create or update in flight that
    would make one. Each resource type says what its spec refers to (`references`)."""
    target = (resource_type, name)
    referring = [kind.name for kind in REGISTRY.values() if kind.may_refer_to(resource_type)]
    if not referring:
        return []
    candidates = [
        (row.resource_type, row.name, row.spec)
        for row in Resource.objects.filter(environment=environment,
                                           resource_type__in=referring)
        .exclude(status__in=GONE_STATUSES)
    ] + [
        (row.resource_type, row.name, row.spec)
        for row in ResourceRequest.objects.filter(
            environment=environment, resource_type__in=referring,
            status__in=IN_FLIGHT_STATUSES,
            action__in=[RequestAction.CREATE, RequestAction.UPDATE])
    ]
    found: set[tuple[str, str]] = set()
    for type_name, dependent, spec in candidates:
        kind = REGISTRY[type_name]
        try:
            refers_to = kind.references(kind.parse_spec(spec))
        except InvalidRequest:
            continue  # a spec this version cannot read refers to nothing it can tell
        if target in refers_to and (type_name, dependent) != target:
            found.add((type_name, dependent))
    return sorted(found)


def stack_member_dependents(*, environment: str, resource_type: str,
                            name: str) -> list[tuple[str, str]]:
    """(type, name) of each live member of the stack that made this resource whose spec
    refers to it (`{"ref": ...}`, whatever field the reference went into)."""
    creator = (ResourceRequest.objects
               .filter(created_resources__environment=environment,
                       created_resources__resource_type=resource_type,
                       created_resources__name=name, stack__isnull=False)
               .exclude(created_resources__status__in=GONE_STATUSES)
               .values("stack_id", "stack_member").first())
    if creator is None:
        return []
    members = StackMember.objects.filter(stack_id=creator["stack_id"]).select_related(
        "request__resource")
    return sorted(
        (member.resource_type, member.name) for member in members
        if creator["stack_member"] in member.depends_on and member.request is not None
        and member.request.resource is not None
        and member.request.resource.status not in GONE_STATUSES
    )


def name_used_elsewhere() -> Exists:
    """An annotation for a request row: whether another request on the same target ever
    issued a create under its physical name (or succeeded, from before create_issued_at
    was recorded). Through the request_target index; false means the name is new to KRP."""
    return Exists(
        ResourceRequest.objects.filter(
            environment=OuterRef("environment"), resource_type=OuterRef("resource_type"),
            name=OuterRef("name"), physical_name=OuterRef("physical_name"),
        ).filter(Q(create_issued_at__isnull=False) | Q(status=RequestStatus.SUCCEEDED))
        .exclude(pk=OuterRef("pk"))
    )


def channel_list(*, user: AbstractBaseUser) -> QuerySet:
    """The notification channels of the user's teams (every team's for a superuser)."""
    return visible_to(NotificationChannel.objects.select_related("team"), user=user)


def disabled_channels(*, user: AbstractBaseUser) -> list[NotificationChannel]:
    """The user's teams' channels disabled for failing: the admin warns their members."""
    return list(channel_list(user=user).filter(enabled=False).order_by("team__name", "id"))
