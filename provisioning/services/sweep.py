"""The periodic sweep: nothing stays queued or running forever.

Run by Celery beat every KRP_SWEEP_INTERVAL_SECONDS (and by `manage.py krp sweep`):
- a request waiting past its deadline is expired;
- a running request whose lease lapsed (its worker died) goes back to queued, or fails
  once its attempts are spent; the next run adopts whatever the dead one made;
- a queued request whose message never went out (broker down, process died), went out
  long ago without starting, or is now due (not_before, retry) is published again;
- an active stack with no member request in flight is advanced: its step's chord was lost
  (a killed worker's message, a broker outage) or its callback never came;
- a resource near its expiry is warned about, and an expired one gets an ordinary delete
  request (services.expiry);
- a notification delivery whose attempt was due long ago is published again (its message
  was lost: services.notifications.republish_lost_deliveries).

Each run that finishes records when (PeriodicRun "sweep"): readiness and `krp check` say
when the sweep last ran, and fail when it is overdue (nothing consumes the control queue).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from dependency_injector.wiring import Provide, inject
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.metrics import instruments as metrics
from provisioning.models import (
    ACTIVE_STACK_STATUSES,
    IN_FLIGHT_STATUSES,
    PeriodicRun,
    RequestStatus,
    ResourceRequest,
    Stack,
)
from provisioning.services import inventory, transitions
from provisioning.services.dispatch import publish
from provisioning.services.expiry import expiry_sweep
from provisioning.services.notifications import republish_lost_deliveries
from provisioning.services.stacks import stack_advance

logger = logging.getLogger(__name__)

SWEEP = "sweep"
BATCH = 500


@dataclass
class SweepReport:
    expired: list[str] = field(default_factory=list)
    reclaimed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    stacks: list[str] = field(default_factory=list)  # advanced: their status moved
    # Resources warned of their expiry; delete requests filed for expired resources;
    # expired resources whose delete was refused this time (tried again next sweep).
    expiry_warned: list[str] = field(default_factory=list)
    expiry_deletes: list[str] = field(default_factory=list)
    expiry_held: list[str] = field(default_factory=list)
    # The same for stacks (stack ids; a stack's deletion is asked for, not filed).
    stack_expiry_warned: list[str] = field(default_factory=list)
    stack_expiry_deletes: list[str] = field(default_factory=list)
    stack_expiry_held: list[str] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)  # notifications published again

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "expired": self.expired, "reclaimed": self.reclaimed,
            "failed": self.failed, "published": self.published, "stacks": self.stacks,
            "expiry_warned": self.expiry_warned, "expiry_deletes": self.expiry_deletes,
            "expiry_held": self.expiry_held,
            "stack_expiry_warned": self.stack_expiry_warned,
            "stack_expiry_deletes": self.stack_expiry_deletes,
            "stack_expiry_held": self.stack_expiry_held, "deliveries": self.deliveries,
        }


@inject
def sweep(*, settings: KrpSettings = Provide[CoreContainer.settings]) -> SweepReport:
    report = SweepReport()
    started = time.monotonic()
    now = timezone.now()
    _expire_overdue(report, now)
    _reclaim_lapsed(report, now, settings)
    _publish_due(report, now, settings)
    _advance_stacks(report)
    expiry = expiry_sweep(now=now, settings=settings)
    report.expiry_warned, report.expiry_deletes, report.expiry_held = (
        expiry.warned, expiry.deleting, expiry.held)
    report.stack_expiry_warned, report.stack_expiry_deletes, report.stack_expiry_held = (
        expiry.stacks_warned, expiry.stacks_deleting, expiry.stacks_held)
    report.deliveries = republish_lost_deliveries(now=now, batch=BATCH)
    PeriodicRun.objects.update_or_create(name=SWEEP, defaults={"last_run_at": timezone.now()})
    metrics.sweep_finished(report, time.monotonic() - started)
    if any(report.as_dict().values()):
        logger.info("sweep: %s", {k: len(v) for k, v in report.as_dict().items()})
    return report


def _expire_overdue(report: SweepReport, now) -> None:
    overdue = ResourceRequest.objects.filter(
        status__in=[RequestStatus.PENDING_APPROVAL, RequestStatus.QUEUED], deadline__lte=now
    ).values_list("pk", "deadline")[:BATCH]
    for pk, deadline in overdue:
        why = f"waited past its deadline {deadline.isoformat()} without starting"
        if transitions.expire(pk, actor=SWEEP, why=why, now=now, quietly=True) is not None:
            report.expired.append(str(pk))


def _reclaim_lapsed(report: SweepReport, now, settings: KrpSettings) -> None:
    lapsed = ResourceRequest.objects.filter(
        status=RequestStatus.RUNNING, lease_expires_at__lte=now
    ).values_list("pk", "lease_owner", "attempts")[:BATCH]
    for pk, owner, attempts in lapsed:
        if attempts >= settings.max_attempts:
            why = (f"worker {owner} stopped renewing its lease; attempts spent "
                   f"({attempts} of {settings.max_attempts})")
            with transaction.atomic():
                failed = transitions.fail(
                    pk, actor=SWEEP, lease_owner=owner, lapsed_by=now, message=why,
                    error_code="worker_lost", error_message=why, now=now, quietly=True,
                )
                if failed is not None:
                    inventory.undo_deleting(request=failed)
                    report.failed.append(str(pk))
            continue
        reclaimed = transitions.reclaim(
            pk, actor=SWEEP, lease_owner=owner, lapsed_by=now,
            message=f"worker {owner} stopped renewing its lease; queued again", quietly=True,
        )
        if reclaimed is not None:
            report.reclaimed.append(str(pk))


def _publish_due(report: SweepReport, now, settings: KrpSettings) -> None:
    horizon = now + timedelta(seconds=settings.publish_horizon_seconds)
    stale = now - timedelta(seconds=settings.queued_stale_seconds)
    waiting = (
        ResourceRequest.objects.filter(status=RequestStatus.QUEUED)
        .filter(Q(published_at__isnull=True) | Q(published_at__lte=stale))
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=horizon))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=horizon))
        .order_by("created_at")
        .values_list("pk", "published_at")[:BATCH]
    )
    for pk, published_at in waiting:
        if published_at is not None:
            logger.warning("request %s was published at %s and never started; publishing "
                           "again", pk, published_at.isoformat())
        if publish(pk):
            report.published.append(str(pk))


def _advance_stacks(report: SweepReport) -> None:
    stuck = (Stack.objects.filter(status__in=sorted(ACTIVE_STACK_STATUSES))
             .exclude(member_requests__status__in=sorted(IN_FLIGHT_STATUSES))
             .values_list("pk", "status")[:BATCH])
    for pk, status in stuck:
        advanced = stack_advance(stack_id=pk)
        if advanced is not None and advanced.status != status:
            report.stacks.append(str(pk))
