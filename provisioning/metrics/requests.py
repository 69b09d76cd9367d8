"""What a request's moves record: a receiver of provisioning.signals.request_moved.

It runs after the move commits, in the process that made it (the web process records a
submission, a worker an attempt and its end, the sweep what it took back), and reads only
the row as the move left it: no query, except for the start of an attempt after an earlier
one, whose wait is measured from the request's last return to the queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from provisioning.metrics import instruments as m
from provisioning.models import (
    TERMINAL_STATUSES,
    RequestEvent,
    RequestStatus,
    ResourceRequest,
)

# The actor of the sweep's transitions (provisioning.services.sweep.SWEEP).
SWEEP_ACTOR = "sweep"


def record_request_moved(sender: Any, *, request: ResourceRequest, from_status: str,
                         to_status: str, actor: str, **kwargs: Any) -> None:
    """Count and time one move of `request` (connected in ProvisioningConfig.ready)."""
    labels = (request.environment, request.resource_type, request.action)
    if not from_status:
        m.REQUESTS_SUBMITTED.labels(*labels).inc()
    if to_status == RequestStatus.RUNNING:
        _attempt_started(request, from_status)
    elif from_status == RequestStatus.RUNNING:
        _attempt_ended(request, to_status, actor)
    if to_status in TERMINAL_STATUSES and from_status != to_status:
        m.REQUESTS.labels(*labels, to_status).inc()
        if request.finished_at is not None:
            m.REQUEST_DURATION.labels(*labels, to_status).observe(
                _seconds(request.created_at, request.finished_at))
        if to_status == RequestStatus.FAILED:
            m.FAILURES.labels(request.environment, request.resource_type,
                              request.error_code or "unknown").inc()


def _attempt_started(request: ResourceRequest, from_status: str) -> None:
    m.ATTEMPTS.labels(request.environment, request.resource_type, request.action).inc()
    if from_status == RequestStatus.RUNNING:
        # A worker took over a request whose lease had lapsed.
        m.LEASES_TAKEN_BACK.labels(request.environment, "taken_over").inc()
    elif request.started_at is not None:
        m.QUEUE_WAIT.labels(request.environment, request.resource_type).observe(
            _seconds(_due_since(request), request.started_at))


def _attempt_ended(request: ResourceRequest, to_status: str, actor: str) -> None:
    if actor == SWEEP_ACTOR:
        # The run died (its lease lapsed); the sweep queued the request again, or failed it
        # with its attempts spent. How long the dead run lasted is not known.
        outcome = "requeued" if to_status == RequestStatus.QUEUED else str(to_status)
        m.LEASES_TAKEN_BACK.labels(request.environment, outcome).inc()
        return
    if to_status == RequestStatus.QUEUED:
        m.RETRIES.labels(request.environment, request.resource_type,
                         request.error_code or "unknown").inc()
    if request.started_at is not None:
        m.RUN_TIME.labels(request.environment, request.resource_type, str(to_status)).observe(
            _seconds(request.started_at, request.finished_at or timezone.now()))


def _due_since(request: ResourceRequest) -> datetime:
    """When the request last became due to run: it entered the queue (or, after an earlier
    attempt, re-entered it), and its not_before and retry time had come."""
    entered = request.queued_at or request.created_at
    if request.attempts > 1:
        requeued = (RequestEvent.objects.filter(request_id=request.pk,
                                                to_status=RequestStatus.QUEUED)
                    .order_by("-created_at").values_list("created_at", flat=True).first())
        entered = requeued or entered
    return max(moment for moment in (entered, request.not_before, request.next_attempt_at)
               if moment is not None)


def _seconds(start: datetime, end: datetime) -> float:
    # Clocks of different hosts may disagree by a little: never a negative duration.
    return max((end - start).total_seconds(), 0.0)
