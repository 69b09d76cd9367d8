"""The state machine: one primitive, and the named transitions built on it.

    pending_approval -> queued -> running -> succeeded | failed
    pending_approval | queued -> cancelled | expired
    running -> queued (retry after a transient error, or a lapsed lease)
    running -> pending_approval (the cloud changed since the approved plan: planned again)
    failed | cancelled | expired -> queued (a retry), or pending_approval where the
                                   environment requires approval

`transition()` is a conditional update that writes one audit event. Each named transition
(`start`, `succeed`, `fail`, ...) knows its from-statuses, its target and the fields it
writes, so the bundle that goes with a status (error fields, finish time, a cleared lease)
is spelled once. Those a caller may want "if still possible" take `quietly=True`: a
refusal then returns None instead of raising TransitionRefused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from provisioning.errors import Conflict, NotFound
from provisioning.models import RequestEvent, RequestStatus, ResourceRequest
from provisioning.signals import announce_on_commit

ALLOWED = {
    RequestStatus.PENDING_APPROVAL: {
        RequestStatus.QUEUED, RequestStatus.CANCELLED, RequestStatus.EXPIRED,
    },
    RequestStatus.QUEUED: {
        RequestStatus.RUNNING, RequestStatus.CANCELLED, RequestStatus.EXPIRED,
        RequestStatus.FAILED,
    },
    RequestStatus.RUNNING: {
        RequestStatus.SUCCEEDED, RequestStatus.FAILED, RequestStatus.QUEUED,
        RequestStatus.RUNNING, RequestStatus.PENDING_APPROVAL,
    },
    RequestStatus.FAILED: {RequestStatus.QUEUED, RequestStatus.PENDING_APPROVAL},
    RequestStatus.CANCELLED: {RequestStatus.QUEUED, RequestStatus.PENDING_APPROVAL},
    RequestStatus.EXPIRED: {RequestStatus.QUEUED, RequestStatus.PENDING_APPROVAL},
    RequestStatus.SUCCEEDED: set(),
}


# The statuses from which people may approve, cancel or retry a request, in the state
# machine's order (refusals list them so). The named transitions below use them, and the
# admin offers a request's buttons by them.
APPROVABLE = (RequestStatus.PENDING_APPROVAL,)
CANCELLABLE = (RequestStatus.PENDING_APPROVAL, RequestStatus.QUEUED)
RETRYABLE = (RequestStatus.FAILED, RequestStatus.CANCELLED, RequestStatus.EXPIRED)


class TransitionRefused(Conflict):
    """The request is not (or no longer) in a status that allows this change."""

    code = "invalid_transition"


def transition(
    request_id: Any,
    *,
    from_statuses: Iterable[str],
    to: str,
    actor: str,
    message: str = "",
    verb: str | None = None,
    extra_filter: dict[str, Any] | None = None,
    **fields: Any,
) -> ResourceRequest:
    """Move a request from one of `from_statuses` to `to`, or raise TransitionRefused.

    The UPDATE carries the status condition, so two callers racing for the same change
    cannot both win; the event is written in the same transaction.
    """
    sources = [str(status) for status in from_statuses]
    for source in sources:
        if to not in ALLOWED[RequestStatus(source)]:
            raise ValueError(f"{source} -> {to} is not a transition of the state machine")
    with transaction.atomic():
        # From one status (a worker's transitions), a changed row was in that status: the
        # conditional UPDATE alone decides and locks; the current status is read only to
        # word a refusal. From several, it is read (and locked) first for the event.
        current = None if len(sources) == 1 else _locked_status(request_id)
        changed = ResourceRequest.objects.filter(
            pk=request_id, status__in=sources, **(extra_filter or {})
        ).update(status=to, **fields)
        if changed and current is None:
            current = sources[0]
        if not changed:
            current = current or _locked_status(request_id)
            raise TransitionRefused(
                f"request {request_id} is {current}; cannot {verb or 'move it to ' + to} "
                f"(allowed only when {' or '.join(sources)})"
            )
        RequestEvent.objects.create(
            request_id=request_id, from_status=current, to_status=to, actor=actor, message=message
        )
        request = ResourceRequest.objects.get(pk=request_id)
        announce_on_commit(request, from_status=current, to_status=to, actor=actor,
                           message=message)
        return request


def _locked_status(request_id: Any) -> str:
    current = (
        ResourceRequest.objects.select_for_update()
        .filter(pk=request_id)
        .values_list("status", flat=True)
        .first()
    )
    if current is None:
        raise NotFound(f"request {request_id} does not exist")
    return current


def _attempt(request_id: Any, *, quietly: bool, **change: Any) -> ResourceRequest | None:
    """transition(), or None for a refusal when the caller only wants it if still possible."""
    try:
        return transition(request_id, **change)
    except (TransitionRefused, NotFound):
        if quietly:
            return None
        raise


# A finished or handed-back run holds no lease.
_NO_LEASE: dict[str, Any] = {"lease_owner": "", "lease_expires_at": None}


# People ---------------------------------------------------------------------------------


def approve(request_id: Any, *, actor: str,
            plan: dict[str, Any] | None = None) -> ResourceRequest:
    """pending_approval -> queued: an operator lets the request go ahead, approving `plan`
    (the request's, marked approved) when it has one."""
    return transition(
        request_id, from_statuses=APPROVABLE, to=RequestStatus.QUEUED,
        actor=actor, message="approved", verb="approve it", queued_at=timezone.now(),
        **({"plan": {**plan, "approved": True}} if plan is not None else {}),
    )


def cancel(request_id: Any, *, actor: str, reason: str = "") -> ResourceRequest:
    """pending_approval | queued -> cancelled: withdrawn before it started."""
    return transition(
        request_id,
        from_statuses=CANCELLABLE,
        to=RequestStatus.CANCELLED,
        actor=actor,
        message=f"cancelled: {reason}" if reason else "cancelled",
        verb="cancel it",
        finished_at=timezone.now(),
    )


def refuse_retry(request: ResourceRequest) -> None:
    """TransitionRefused, as retry() words it, unless `request` is in a status to retry."""
    if request.status not in RETRYABLE:
        raise TransitionRefused(
            f"request {request.pk} is {request.status}; cannot retry it "
            f"(allowed only when {' or '.join(RETRYABLE)})"
        )


def retry(request_id: Any, *, actor: str, needs_approval: bool) -> ResourceRequest:
    """failed | cancelled | expired -> queued, or pending_approval where the environment
    requires it; with a fresh attempt budget and a new task id (a new job, not a redelivery)."""
    return transition(
        request_id,
        from_statuses=RETRYABLE,
        to=RequestStatus.PENDING_APPROVAL if needs_approval else RequestStatus.QUEUED,
        actor=actor,
        message="retried; waits for approval again" if needs_approval else "retried",
        verb="retry it",
        attempts=0, weather_attempts=0, error_code="", error_message="",
        task_id=str(uuid.uuid4()), plan=None,  # a new run: what it will change is seen anew
        published_at=None, next_attempt_at=None, finished_at=None,
        queued_at=None if needs_approval else timezone.now(),
    )


# Workers --------------------------------------------------------------------------------


def start(request: ResourceRequest, *, actor: str, worker_id: str, task_id: str,
          lease_seconds: int, now: datetime) -> ResourceRequest:
    """queued -> running under a lease; or running -> running, taking over a request whose
    lease lapsed (`request` is the row as the caller saw it)."""
    taking_over = request.status == RequestStatus.RUNNING
    return transition(
        request.pk,
        from_statuses=[RequestStatus.RUNNING if taking_over else RequestStatus.QUEUED],
        to=RequestStatus.RUNNING,
        actor=actor,
        message=(
            f"attempt {request.attempts + 1} on {worker_id}"
            + (f", taking over from {request.lease_owner} whose lease lapsed"
               if taking_over else "")
        ),
        # A lapsed lease is the condition for taking over a running request.
        extra_filter={"lease_expires_at__lte": now} if taking_over else None,
        attempts=request.attempts + 1,
        started_at=now,
        task_id=task_id,
        lease_owner=worker_id,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
        # A new fencing token: whichever run held the request before can no longer write.
        lease_generation=F("lease_generation") + 1,
    )


def succeed(request_id: Any, *, actor: str, worker_id: str, message: str,
            outputs: dict[str, Any], now: datetime) -> ResourceRequest:
    """running -> succeeded, only for the run that still holds the lease."""
    return transition(
        request_id, from_statuses=[RequestStatus.RUNNING], to=RequestStatus.SUCCEEDED,
        actor=actor, message=message, extra_filter={"lease_owner": worker_id},
        outputs=outputs, finished_at=now, error_code="", error_message="", **_NO_LEASE,
    )


def fail(request_id: Any, *, actor: str, lease_owner: str, message: str, error_code: str,
         error_message: str, lapsed_by: datetime | None = None, now: datetime | None = None,
         quietly: bool = False) -> ResourceRequest | None:
    """running -> failed, only while `lease_owner` holds the lease (and, with `lapsed_by`,
    only if that lease had lapsed by then): a run that lost its lease fails nothing."""
    condition: dict[str, Any] = {"lease_owner": lease_owner}
    if lapsed_by is not None:
        condition["lease_expires_at__lte"] = lapsed_by
    return _attempt(
        request_id, quietly=quietly,
        from_statuses=[RequestStatus.RUNNING], to=RequestStatus.FAILED, actor=actor,
        message=message, extra_filter=condition, error_code=error_code,
        error_message=error_message, finished_at=now or timezone.now(), **_NO_LEASE,
    )


def give_up(request: ResourceRequest, *, actor: str, message: str,
            quietly: bool = False) -> ResourceRequest | None:
    """queued | running -> failed without another attempt: the attempt budget is spent.

    From the status the caller saw (`request`), so a request that moved on meanwhile is
    left alone. The last error's code stays, so the failure says what kept going wrong.
    """
    return _attempt(
        request.pk, quietly=quietly,
        from_statuses=[request.status], to=RequestStatus.FAILED, actor=actor, message=message,
        error_code=request.error_code or "attempts_exhausted", error_message=message,
        finished_at=timezone.now(), **_NO_LEASE,
    )


def refuse(request_id: Any, *, actor: str, message: str, error_code: str, error_message: str,
           quietly: bool = False) -> ResourceRequest | None:
    """queued -> failed before any attempt: nothing here can carry the request out."""
    return _attempt(
        request_id, quietly=quietly,
        from_statuses=[RequestStatus.QUEUED], to=RequestStatus.FAILED, actor=actor,
        message=message, error_code=error_code, error_message=error_message,
        finished_at=timezone.now(),
    )


def requeue(request_id: Any, *, actor: str, lease_owner: str, message: str, error_code: str,
            error_message: str, retry_at: datetime,
            quietly: bool = False) -> ResourceRequest | None:
    """running -> queued after a transient error, to run again at `retry_at`; only for the
    run that holds the lease. The message goes out again, so it counts as unpublished."""
    return _attempt(
        request_id, quietly=quietly,
        from_statuses=[RequestStatus.RUNNING], to=RequestStatus.QUEUED, actor=actor,
        message=message, extra_filter={"lease_owner": lease_owner},
        error_code=error_code, error_message=error_message,
        next_attempt_at=retry_at, published_at=None, **_NO_LEASE,
    )


# The sweep ------------------------------------------------------------------------------


def replan(request_id: Any, *, actor: str, lease_owner: str,
           plan: dict[str, Any]) -> ResourceRequest | None:
    """running -> pending_approval, for the run holding the lease: the cloud changed since
    the approved plan, so the new plan waits for approval (a new job once approved)."""
    lines = "; ".join(plan.get("lines", []))
    return _attempt(
        request_id, quietly=True,
        from_statuses=[RequestStatus.RUNNING], to=RequestStatus.PENDING_APPROVAL,
        actor=actor, extra_filter={"lease_owner": lease_owner},
        message=f"the cloud changed since the plan was approved; planned again: {lines}",
        plan=plan, published_at=None, next_attempt_at=None, task_id=str(uuid.uuid4()),
        **_NO_LEASE,
    )


def expire(request_id: Any, *, actor: str, why: str, now: datetime | None = None,
           quietly: bool = False) -> ResourceRequest | None:
    """pending_approval | queued -> expired: it waited past its deadline."""
    return _attempt(
        request_id, quietly=quietly,
        from_statuses=[RequestStatus.PENDING_APPROVAL, RequestStatus.QUEUED],
        to=RequestStatus.EXPIRED, actor=actor, message=why,
        error_code="expired", error_message=why, finished_at=now or timezone.now(),
    )


def reclaim(request_id: Any, *, actor: str, lease_owner: str, lapsed_by: datetime,
            message: str, quietly: bool = False) -> ResourceRequest | None:
    """running -> queued when `lease_owner` stopped renewing its lease (lapsed by
    `lapsed_by`): a new job with a new task id, due at once."""
    return _attempt(
        request_id, quietly=quietly,
        from_statuses=[RequestStatus.RUNNING], to=RequestStatus.QUEUED, actor=actor,
        message=message,
        extra_filter={"lease_owner": lease_owner, "lease_expires_at__lte": lapsed_by},
        published_at=None, next_attempt_at=None, task_id=str(uuid.uuid4()),
        # The takeover itself fences the stalled run, before any worker starts again.
        lease_generation=F("lease_generation") + 1, **_NO_LEASE,
    )
