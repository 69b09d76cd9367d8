"""A request's retry budget: when a failed step is tried again, and when it is given up.

Two budgets, one per kind of trouble:
- the weather (throttling, the network: `cloud.spends_time`) is budgeted by time, until the
  request's deadline or KRP_TRANSIENT_BUDGET_SECONDS after it became due; it never fails a
  request that is merely slowed down;
- every other transient error (a service settling a change, AWS's own 500s, a run cut by
  the time limit) by KRP_MAX_ATTEMPTS attempts.
Both back off exponentially with full jitter, capped at KRP_RETRY_BACKOFF_MAX_SECONDS
(Celery's own backoff function), which keeps every countdown well under the broker's
visibility timeout (settings check that).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from celery.utils.time import get_exponential_backoff_interval

from containers.settings import KrpSettings
from provisioning.cloud import spends_time
from provisioning.errors import KrpError, TransientCloudError
from provisioning.models import ResourceRequest


def backoff(*, tries: int, settings: KrpSettings) -> float:
    """Seconds to wait after the `tries`-th failed try: full jitter, capped, at least 1."""
    return get_exponential_backoff_interval(
        factor=settings.retry_backoff_seconds, retries=max(tries - 1, 0),
        maximum=settings.retry_backoff_max_seconds, full_jitter=True,
    ) or 1


def time_budget_end(*, request: ResourceRequest, settings: KrpSettings) -> datetime:
    """Until when the weather is waited out: the deadline, or the budget from when the
    request became due (queued, or its not_before)."""
    if request.deadline:
        return request.deadline
    due = max(filter(None, (request.queued_at, request.created_at, request.not_before)))
    return due + timedelta(seconds=settings.transient_budget_seconds)


def may_retry(*, request: ResourceRequest, error: KrpError, tries_spent: int,
              settings: KrpSettings, at: datetime) -> bool:
    """Whether a step that failed with `error` may run again at `at`, for a request that
    has spent `tries_spent` of its KRP_MAX_ATTEMPTS on other errors."""
    if not isinstance(error, TransientCloudError):
        return False
    if spends_time(error):
        return at < time_budget_end(request=request, settings=settings)
    if tries_spent >= settings.max_attempts:
        return False
    return not (request.deadline and at >= request.deadline)


def retry_delay(*, request: ResourceRequest, error: KrpError, settings: KrpSettings,
                now: datetime) -> float | None:
    """The backoff before the next attempt of `request`, whose attempt (counted in
    `attempts`, not yet in `weather_attempts`) failed with `error`; None when it must not
    be retried: permanent, or its budget is spent."""
    delay = backoff(tries=request.attempts, settings=settings)
    if may_retry(request=request, error=error, tries_spent=request.attempts_spent,
                 settings=settings, at=now + timedelta(seconds=delay)):
        return delay
    return None
