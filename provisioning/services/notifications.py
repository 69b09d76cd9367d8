"""Notifications: which of a team's channels hear of what, recorded as deliveries.

Events come from three places:
- `provisioning.signals.request_moved` (on_request_moved, connected in apps.py): a request
  recorded is `submitted` (and `pending_approval` too when it waits for approval); a
  request that comes to wait for approval again (a retry in an approval environment) is
  `pending_approval`; `succeeded` and `failed` as it ends. The plan a worker records while
  a request waits is not announced again: its team heard `pending_approval` already.
- reconcile (notify_drift): one `drift_found` per run and team, listing the team's
  resources found drifted or missing. Orphans belong to no team and are not sent anywhere:
  operators see them in the admin's reconcile run.
- the expiry sweep (services.expiry.warn: `expiring`, with when and how long is left), or
  any caller with a resource (notify_resource); for a stack, services.stack_expiry.warn
  (notify_stack).

Each matching enabled channel of the team gets one Delivery row, and one task
(krp.deliver, on the control queue, with the delivery's id only) is published for it once
the transaction commits; services.deliveries sends it.

The accept path pays for this: a team's channels are looked up after each submission.
The submission's own query (selectors.submission_context) already says whether the team
has an enabled channel, so a team without one costs no query at all; a team with one
costs the lookup and one transaction inserting its deliveries (BEGIN, INSERT, COMMIT).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from dependency_injector.wiring import Provide, inject
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.models import (
    Delivery,
    FindingKind,
    NotificationChannel,
    NotificationEvent,
    ReconcileRun,
    RequestStatus,
    Resource,
    ResourceRequest,
    Stack,
)

if TYPE_CHECKING:  # the project's app factory; services only call what it built
    from krp_project.celery import KrpCelery

logger = logging.getLogger(__name__)

DELIVER_TASK = "krp.deliver"
# What reconcile reports to a resource's team (orphans have none; errors are the cloud's).
DRIFT_KINDS = (FindingKind.DRIFTED, FindingKind.MISSING)
# A drift_found payload lists at most this many findings (and says how many there were):
# a run that finds a whole account drifted must not make a body of megabytes.
FINDINGS_LISTED = 100


def events_of_move(from_status: str, to_status: str) -> list[str]:
    """The notification events a request's move from one status to another makes."""
    events: list[str] = []
    if not from_status:
        events.append(NotificationEvent.SUBMITTED)
    if to_status == RequestStatus.PENDING_APPROVAL and from_status != to_status:
        events.append(NotificationEvent.PENDING_APPROVAL)
    if to_status == RequestStatus.SUCCEEDED:
        events.append(NotificationEvent.SUCCEEDED)
    elif to_status == RequestStatus.FAILED:
        events.append(NotificationEvent.FAILED)
    return [str(event) for event in events]


def on_request_moved(sender: Any, *, request: ResourceRequest, from_status: str,
                     to_status: str, message: str = "", **kwargs: Any) -> None:
    """request_moved's receiver: record and publish the deliveries the move makes."""
    events = events_of_move(from_status, to_status)
    if not events:
        return
    # A team read by the submission says whether it has a channel (see the module's doc).
    if ResourceRequest.team.is_cached(request) and not getattr(request.team, "notifies", 1):
        return
    record_deliveries(team_id=request.team_id, events=events,
                      payload_of=partial(_request_payload, request, message=message))


def notify_resource(*, event: str, resource: Resource,
                    details: dict[str, Any] | None = None) -> list[Delivery]:
    """Tell the resource's team about it (`expiring` from the TTL sweep, for one): one
    delivery per enabled channel of the team that wants `event`. `details` (JSON, no
    secrets) goes into the payload as it is, e.g. {"expires_at": "..."}."""
    if event not in NotificationEvent.values:
        raise ValueError(f"unknown notification event {event!r}")
    body = {"resource": resource_summary(resource), "details": details or {}}
    return record_deliveries(team_id=resource.team_id, events=[event],
                             payload_of=lambda event, team: {**body, "team": team})


def notify_stack(*, event: str, stack: Stack,
                 details: dict[str, Any] | None = None) -> list[Delivery]:
    """notify_resource for a stack (`expiring` from the TTL sweep: a stack expires as a
    whole): its payload's `stack` says what it is and lists its members."""
    if event not in NotificationEvent.values:
        raise ValueError(f"unknown notification event {event!r}")
    body = {"stack": stack_summary(stack), "details": details or {}}
    return record_deliveries(team_id=stack.team_id, events=[event],
                             payload_of=lambda event, team: {**body, "team": team})


def notify_drift(run: ReconcileRun) -> list[Delivery]:
    """After a reconcile run: tell each team whose resources it found drifted or missing,
    once, listing them."""
    by_team: dict[int, list[dict[str, Any]]] = defaultdict(list)
    findings = (run.findings.filter(kind__in=DRIFT_KINDS, resource__isnull=False)
                .select_related("resource").order_by("resource__resource_type",
                                                     "resource__name"))
    for finding in findings:
        by_team[finding.resource.team_id].append({
            "kind": finding.kind, "resource": resource_summary(finding.resource),
            "action_taken": finding.action_taken,
        })
    deliveries: list[Delivery] = []
    for team_id, found in by_team.items():
        body = {"reconcile_run": {"id": str(run.pk), "environment": run.environment,
                                  "started_at": run.started_at.isoformat()},
                "findings": found[:FINDINGS_LISTED], "findings_total": len(found)}
        deliveries += record_deliveries(
            team_id=team_id, events=[NotificationEvent.DRIFT_FOUND],
            payload_of=lambda event, team, body=body: {**body, "team": team})
    return deliveries


def record_deliveries(*, team_id: int, events: Iterable[str],
                      payload_of: Callable[[str, str], dict[str, Any]]) -> list[Delivery]:
    """A Delivery for each of the team's enabled channels that wants each event, its
    payload `payload_of(event, team_name)` under the common envelope; each published
    (its id only) once the current transaction commits."""
    wanted = list(events)
    channels = list(NotificationChannel.objects.filter(team_id=team_id, enabled=True)
                    .select_related("team"))
    deliveries: list[Delivery] = []
    now = timezone.now()
    for channel in channels:
        for event in wanted:
            if event not in channel.events:
                continue
            delivery_id = uuid.uuid4()
            payload = {"event": str(event), "delivery": str(delivery_id),
                       "created_at": now.isoformat(),
                       **payload_of(event, channel.team.name)}
            deliveries.append(Delivery(id=delivery_id, channel=channel, event=event,
                                       payload=payload, next_attempt_at=now))
    if deliveries:
        Delivery.objects.bulk_create(deliveries)
        transaction.on_commit(partial(publish_deliveries, [d.pk for d in deliveries]))
    return deliveries


@inject
def publish_deliveries(delivery_ids: Iterable[Any], *,
                       settings: KrpSettings = Provide[CoreContainer.settings],
                       celery_app: KrpCelery = Provide[CoreContainer.celery_app]) -> None:
    """Publish krp.deliver for each delivery, on the control queue (eager mode runs each
    here and now). A publish that fails is logged; that delivery stays pending."""
    task = celery_app.tasks[DELIVER_TASK]
    for delivery_id in delivery_ids:
        try:
            task.apply_async(kwargs={"delivery_id": str(delivery_id)},
                             queue=settings.control_queue)
        except Exception as exc:  # noqa: BLE001 - the broker's errors vary by transport
            logger.warning("could not publish delivery %s (%s: %s); it stays pending",
                           delivery_id, type(exc).__name__, exc)


@inject
def republish_lost_deliveries(*, now: datetime, batch: int = 500,
                              settings: KrpSettings = Provide[CoreContainer.settings],
                              ) -> list[str]:
    """The sweep's part: publish again each pending delivery whose attempt was due more
    than KRP_QUEUED_STALE_SECONDS ago (its publish failed, or the broker lost it). A
    message that was only late makes a duplicate, which is harmless: each attempt is
    claimed on the row, and receivers deduplicate by KRP-Delivery."""
    stale = now - timedelta(seconds=settings.queued_stale_seconds)
    lost = list(Delivery.objects.filter(status=Delivery.Status.PENDING,
                                        next_attempt_at__lte=stale)
                .order_by("next_attempt_at").values_list("pk", flat=True)[:batch])
    if lost:
        # Due again from now: the next sweep leaves them to this publish.
        Delivery.objects.filter(pk__in=lost).update(next_attempt_at=now)
        logger.warning("publishing %d notification deliveries again: their messages were "
                       "lost", len(lost))
        publish_deliveries(lost)
    return [str(pk) for pk in lost]


def _link(name: str, pk: Any, settings: KrpSettings) -> str:
    return (settings.public_url or "") + reverse(name, args=[pk])


@inject
def _request_payload(request: ResourceRequest, event: str, team: str, *, message: str,
                     settings: KrpSettings = Provide[CoreContainer.settings],
                     ) -> dict[str, Any]:
    # What the API shows of a request, less its spec (a notification says what happened;
    # the link has the rest).
    return {
        "team": team,
        "message": message,
        "request": {
            "id": str(request.pk), "environment": request.environment,
            "resource_type": request.resource_type, "name": request.name,
            "action": request.action, "status": request.status, "error": request.error,
            "resource": str(request.resource_id) if request.resource_id else None,
            "url": _link("api:request-detail", request.pk, settings),
        },
    }


@inject
def resource_summary(resource: Resource, *,
                     settings: KrpSettings = Provide[CoreContainer.settings]) -> dict[str, Any]:
    """A resource as a notification shows it."""
    return {"id": str(resource.pk), "environment": resource.environment,
            "resource_type": resource.resource_type, "name": resource.name,
            "arn": resource.arn, "status": resource.status,
            "expires_at": resource.expires_at.isoformat() if resource.expires_at else None,
            "url": _link("api:resource-detail", resource.pk, settings)}


@inject
def stack_summary(stack: Stack, *,
                  settings: KrpSettings = Provide[CoreContainer.settings]) -> dict[str, Any]:
    """A stack as a notification shows it: what it is and its members (key, type, name)."""
    return {"id": str(stack.pk), "environment": stack.environment, "name": stack.name,
            "status": stack.status,
            "expires_at": stack.expires_at.isoformat() if stack.expires_at else None,
            "members": [{"key": m.key, "resource_type": m.resource_type, "name": m.name}
                        for m in stack.members.order_by("position", "key")],
            "url": _link("api:stack-detail", stack.pk, settings)}
