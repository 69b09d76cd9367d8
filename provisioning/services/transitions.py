"""The state machine's one primitive: a conditional update that writes one audit event.

    pending_approval -> queued -> running -> succeeded | failed
    pending_approval | queued -> cancelled | expired
    running -> queued (retry after a transient error, or a lapsed lease)
    failed | cancelled | expired -> queued (a retry), or pending_approval where the
                                   environment requires approval
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from provisioning.errors import Conflict
from provisioning.models import RequestEvent, RequestStatus, ResourceRequest

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
        RequestStatus.RUNNING,
    },
    RequestStatus.FAILED: {RequestStatus.QUEUED, RequestStatus.PENDING_APPROVAL},
    RequestStatus.CANCELLED: {RequestStatus.QUEUED, RequestStatus.PENDING_APPROVAL},
    RequestStatus.EXPIRED: {RequestStatus.QUEUED, RequestStatus.PENDING_APPROVAL},
    RequestStatus.SUCCEEDED: set(),
}


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
        current = (
            ResourceRequest.objects.select_for_update()
            .filter(pk=request_id)
            .values_list("status", flat=True)
            .first()
        )
        if current is None:
            raise TransitionRefused(f"request {request_id} does not exist", "not_found")
        changed = ResourceRequest.objects.filter(
            pk=request_id, status__in=sources, **(extra_filter or {})
        ).update(status=to, **fields)
        if not changed:
            raise TransitionRefused(
                f"request {request_id} is {current}; cannot {verb or 'move it to ' + to} "
                f"(allowed only when {' or '.join(sources)})"
            )
        RequestEvent.objects.create(
            request_id=request_id, from_status=current, to_status=to, actor=actor, message=message
        )
        return ResourceRequest.objects.get(pk=request_id)
