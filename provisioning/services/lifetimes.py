"""A resource's lifetime: the ttl or expires_at a request asks for, checked against its
environment's bounds, and the expiry schedule (warnings, then the expiry) the sweep keeps.

Pure rules, no writes: the submission checks a request's lifetime here, the inventory
applies it when the request succeeds, and services.expiry extends it and acts on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from dependency_injector.wiring import Provide, inject
from django.utils import timezone

from containers.core import CoreContainer
from containers.durations import format_duration, parse_duration
from containers.settings import EnvironmentSettings, KrpSettings
from provisioning.errors import InvalidRequest
from provisioning.models import RequestAction, ResourceRequest

# The actions that make a resource, and so may have to say how long it lives.
MAKING = (RequestAction.CREATE, RequestAction.IMPORT)


def requested_lifetime(*, ttl: Any, expires_at: Any, action: str | None,
                       environment: EnvironmentSettings | None, now: datetime,
                       required: bool = True) -> tuple[timedelta | None, datetime | None]:
    """The (ttl, expires_at) a request asks for, checked: one or neither, not both; only
    on a create, import or update; in the future; within the environment's max_ttl from
    now; and present where it requires a ttl (on a create or import, when `required`)."""
    if ttl is None and expires_at is None:
        if required and action in MAKING and environment is not None and (
                environment.requires_ttl):
            bound = (f" (at most {format_duration(environment.max_ttl)})"
                     if environment.max_ttl else "")
            raise InvalidRequest.about(
                "ttl", f"{environment.name} requires a ttl or expires_at{bound}",
                "ttl_required")
        return None, None
    if ttl is not None and expires_at is not None:
        both = "give ttl or expires_at, not both"
        raise InvalidRequest.about_each({"ttl": [both], "expires_at": [both]},
                                        "invalid_expiry")
    field = "ttl" if ttl is not None else "expires_at"
    if action == RequestAction.DELETE:
        raise InvalidRequest.about(field, "a delete takes no ttl or expires_at",
                                   "invalid_expiry")
    if ttl is not None:
        try:
            ttl = parse_duration(ttl)
        except ValueError as exc:
            raise InvalidRequest.about("ttl", str(exc), "invalid_ttl") from None
        check_bound(field="ttl", expires_at=now + ttl, environment=environment, now=now)
        return ttl, None
    check_moment(expires_at, environment=environment, now=now)
    return None, expires_at


def require_one(*, ttl: Any, expires_at: Any) -> None:
    """An extend (a resource's or a stack's) gives exactly one of ttl and expires_at."""
    if (ttl is None) == (expires_at is None):
        both = "give ttl or expires_at" + (", not both" if ttl is not None else "")
        raise InvalidRequest.about_each({"ttl": [both], "expires_at": [both]},
                                        "invalid_expiry")


def extended_expiry(*, ttl: Any, expires_at: Any, environment: EnvironmentSettings,
                    now: datetime) -> datetime:
    """The new expiry an extend asks for (exactly one given: require_one): `ttl` from now
    or `expires_at`, within the environment's max_ttl from now."""
    ttl, moment = requested_lifetime(ttl=ttl, expires_at=expires_at, action=None,
                                     environment=environment, now=now, required=False)
    return now + ttl if ttl is not None else moment


def warning_due(*, expires_at: datetime, warnings: Iterable[timedelta],
                warnings_sent: list[dict[str, Any]],
                now: datetime) -> tuple[timedelta | None, datetime]:
    """The warning to give now (None if none is due), and when to look again after it."""
    sent = sent_thresholds(warnings_sent)
    threshold = due_warning(expires_at=expires_at, warnings=warnings, sent=sent, now=now)
    if threshold is not None:
        sent.append(threshold)
    return threshold, next_check(expires_at=expires_at, warnings=warnings, sent=sent)


def warning_given(*, before: timedelta, left: timedelta, now: datetime) -> dict[str, str]:
    """A warning as it is recorded (in expiry_warnings) and shown."""
    return {"before": format_duration(before), "left": format_duration(left),
            "sent_at": now.isoformat()}


def check_moment(expires_at: Any, *, environment: EnvironmentSettings | None,
                 now: datetime) -> None:
    """Refuse an expires_at that is not an aware time in the future within the bound."""
    if not isinstance(expires_at, datetime) or timezone.is_naive(expires_at):
        raise InvalidRequest.about(
            "expires_at", "must be an ISO 8601 time with a zone (e.g. 2026-12-01T09:00:00Z)",
            "invalid_expires_at")
    if expires_at <= now:
        raise InvalidRequest.about("expires_at", "must be in the future", "invalid_expires_at")
    check_bound(field="expires_at", expires_at=expires_at, environment=environment, now=now)


def check_bound(*, field: str, expires_at: datetime,
                environment: EnvironmentSettings | None, now: datetime) -> None:
    """Refuse an expiry further from `now` than the environment's max_ttl."""
    if environment is None or environment.max_ttl is None:
        return
    if expires_at - now > environment.max_ttl:
        bound = format_duration(environment.max_ttl)
        where = "" if field == "ttl" else " from now"
        raise InvalidRequest.about(field, f"at most {bound}{where} in {environment.name}",
                                   "ttl_too_long")


def next_check(*, expires_at: datetime, warnings: Iterable[timedelta],
               sent: Iterable[timedelta] = ()) -> datetime:
    """When the sweep next looks at a resource expiring at `expires_at`: the next warning
    not yet given (a warning given counts for every longer threshold too), else the expiry
    itself."""
    given = list(sent)
    pending = sorted((w for w in warnings if not given or w < min(given)), reverse=True)
    return expires_at - pending[0] if pending else expires_at


def due_warning(*, expires_at: datetime, warnings: Iterable[timedelta],
                sent: Iterable[timedelta], now: datetime) -> timedelta | None:
    """The threshold to warn about now, if any: the shortest not yet given that is at least
    the time left (one warning, however many thresholds a late sweep passed)."""
    given = list(sent)
    left = expires_at - now
    due = [w for w in warnings if w >= left and (not given or w < min(given))]
    return min(due) if due else None


def sent_thresholds(warnings_sent: list[dict[str, Any]]) -> list[timedelta]:
    """The thresholds of the warnings recorded on a resource (expiry_warnings)."""
    return [parse_duration(item["before"]) for item in warnings_sent]


@inject
def expiry_fields(*, environment: str, expires_at: datetime | None,
                  settings: KrpSettings = Provide[CoreContainer.settings]) -> dict[str, Any]:
    """The Resource fields of a new expiry (or none): no warning given yet, no problem."""
    check = None if expires_at is None else next_check(
        expires_at=expires_at, warnings=settings.expiry_warnings_of(environment))
    return {"expires_at": expires_at, "expiry_check_at": check, "expiry_warnings": [],
            "expiry_problem": ""}


def lifetime_on_success(request: ResourceRequest, *, now: datetime) -> dict[str, Any] | None:
    """The expiry fields a succeeded request gives its resource: its ttl counted from now,
    or its expires_at; None when it asked for neither (an update keeps the resource's)."""
    if request.ttl is not None:
        return expiry_fields(environment=request.environment, expires_at=now + request.ttl)
    if request.expires_at is not None:
        return expiry_fields(environment=request.environment, expires_at=request.expires_at)
    return None
