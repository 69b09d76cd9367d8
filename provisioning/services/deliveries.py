"""Sending one delivery: a signed POST to a webhook, or an email; its outcome recorded.

The task krp.deliver (tasks.py) calls attempt_delivery once per attempt and retries with
the backoff it is given. What an answer means:

- 2xx: delivered; the channel's run of failures ends.
- 408, 429, 5xx, a timeout, a refused or dropped connection (a webhook); an SMTP or
  network error (email): tried again, up to KRP_NOTIFY_MAX_ATTEMPTS, backing off
  exponentially with jitter from KRP_NOTIFY_BACKOFF_SECONDS to
  KRP_NOTIFY_BACKOFF_MAX_SECONDS (kept under half the visibility timeout: a longer
  countdown runs twice on Redis). Then the delivery gave up.
- any other answer (3xx: redirects are not followed, a signed body goes only where the
  team said; 4xx: the receiver refuses it and will again), or an address the mail server
  refuses: failed, not retried.
- a host that resolves to an address webhooks may not reach (webhook_guard: not public,
  and not in KRP_WEBHOOK_ALLOWED_NETWORKS): failed, not retried, nothing sent; the
  connection goes to the address checked, so a name cannot change between the check and
  the POST. A name that does not resolve is tried again like a refused connection.

A delivery that failed or gave up counts one failure of its channel; at
KRP_WEBHOOK_MAX_FAILURES in a row the channel is disabled, with the reason, until its
team enables it again (API or admin). A delivery of a channel disabled meanwhile gives up
without being sent and without counting.

In eager mode (no worker) a delivery runs inside the request that made it: it gets one
attempt, with a timeout of at most EAGER_WEBHOOK_TIMEOUT_SECONDS, and no retry, so a slow
or dead receiver holds a web request for seconds at most.

HTTP goes through `requests` (already installed with moto; timeouts for connect and read,
redirects off per call, connection errors as exception classes), not urllib, whose
redirect handling would have to be subclassed away. Nothing here logs a secret, a
target URL (a webhook URL's path may itself be a secret) or a body.
"""

from __future__ import annotations

import json
import logging
import random
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from dependency_injector.wiring import Provide, inject
from django.core.mail import send_mail
from django.db.models import F
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning import webhook_guard
from provisioning.models import ChannelKind, Delivery, NotificationChannel
from provisioning.webhook_signing import (
    ALGORITHM,
    ALGORITHM_HEADER,
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    sign,
)

logger = logging.getLogger(__name__)

EAGER_WEBHOOK_TIMEOUT_SECONDS = 2
RETRIED_HTTP_STATUSES = frozenset({408, 429})
USER_AGENT = "KRP-Webhooks/1"


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to: the delivery's status, and when to try again (if so)."""

    delivery_id: str
    status: str
    attempts: int
    retry_in: int | None = None

    def as_result(self) -> dict[str, Any]:
        # A task's result: ids and outcomes only.
        return {"delivery": self.delivery_id, "status": self.status, "attempts": self.attempts}


@dataclass(frozen=True)
class _Sent:
    ok: bool
    retry: bool
    status_code: int | None
    error: str


@inject
def attempt_delivery(*, delivery_id: str, eager: bool = False,
                     settings: KrpSettings = Provide[CoreContainer.settings]) -> Attempt:
    """Send a pending delivery once and record what came of it."""
    delivery = (Delivery.objects.select_related("channel", "channel__team")
                .filter(pk=delivery_id).first())
    if delivery is None or delivery.status != Delivery.Status.PENDING:
        # Gone, or finished by an earlier run of a redelivered message.
        return Attempt(str(delivery_id), delivery.status if delivery else "gone",
                       delivery.attempts if delivery else 0)
    channel = delivery.channel
    if not channel.enabled:
        _finish(delivery, Delivery.Status.GAVE_UP, None,
                "not sent: the channel was disabled before this delivery went out")
        return Attempt(str(delivery.pk), delivery.status, delivery.attempts)
    # Claim this attempt: a second run of the same message (redelivered while this one
    # works) finds the count moved and leaves it to this one.
    claimed = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING,
                                      attempts=delivery.attempts).update(
        attempts=F("attempts") + 1)
    if not claimed:
        return Attempt(str(delivery.pk), delivery.status, delivery.attempts)
    delivery.attempts += 1
    timeout = settings.webhook_timeout_seconds
    if eager:
        timeout = min(timeout, EAGER_WEBHOOK_TIMEOUT_SECONDS)
    sent = (_post(delivery, timeout, settings.webhook_allowed_networks)
            if channel.kind == ChannelKind.WEBHOOK
            else _email(delivery))
    if sent.ok:
        _finish(delivery, Delivery.Status.DELIVERED, sent.status_code, "")
        NotificationChannel.objects.filter(pk=channel.pk, consecutive_failures__gt=0).update(
            consecutive_failures=0)
        logger.info("delivery %s (%s) to channel %s delivered on attempt %d", delivery.pk,
                    delivery.event, channel.pk, delivery.attempts)
        return Attempt(str(delivery.pk), delivery.status, delivery.attempts)
    if sent.retry and not eager and delivery.attempts < settings.notify_max_attempts:
        retry_in = backoff(delivery.attempts, settings)
        Delivery.objects.filter(pk=delivery.pk).update(
            last_status_code=sent.status_code, last_error=sent.error,
            next_attempt_at=timezone.now() + timedelta(seconds=retry_in))
        logger.info("delivery %s to channel %s: attempt %d failed (%s); again in %d s",
                    delivery.pk, channel.pk, delivery.attempts, sent.error, retry_in)
        return Attempt(str(delivery.pk), delivery.status, delivery.attempts, retry_in)
    status = Delivery.Status.GAVE_UP if sent.retry else Delivery.Status.FAILED
    _finish(delivery, status, sent.status_code, sent.error)
    logger.warning("delivery %s (%s) to channel %s %s after %d attempt(s): %s", delivery.pk,
                   delivery.event, channel.pk, status, delivery.attempts, sent.error)
    count_failure(channel, last_error=sent.error, settings=settings)
    return Attempt(str(delivery.pk), delivery.status, delivery.attempts)


def backoff(attempts: int, settings: KrpSettings) -> int:
    """Seconds before the next attempt, after `attempts` failed: doubling from
    KRP_NOTIFY_BACKOFF_SECONDS up to KRP_NOTIFY_BACKOFF_MAX_SECONDS, with jitter (between
    half of it and all of it) so that a receiver back from an outage is not hit by every
    retry at once. Whole seconds, at least one: RabbitMQ's native delayed delivery routes
    a countdown by its whole seconds and refuses one under a second (measured: the retry's
    message was rejected, "countdown must be a positive number")."""
    ceiling = min(settings.notify_backoff_max_seconds,
                  settings.notify_backoff_seconds * 2 ** (attempts - 1))
    return max(1, round(random.uniform(ceiling / 2, ceiling)))  # noqa: S311 - not a secret


def count_failure(channel: NotificationChannel, *, last_error: str,
                  settings: KrpSettings) -> None:
    """One more delivery of the channel failed: disable the channel at
    KRP_WEBHOOK_MAX_FAILURES in a row."""
    NotificationChannel.objects.filter(pk=channel.pk).update(
        consecutive_failures=F("consecutive_failures") + 1)
    limit = settings.webhook_max_failures
    reason = f"disabled after {limit} deliveries in a row failed; the last: {last_error}"
    disabled = NotificationChannel.objects.filter(
        pk=channel.pk, enabled=True, consecutive_failures__gte=limit,
    ).update(enabled=False, disabled_at=timezone.now(), disabled_reason=reason)
    if disabled:
        logger.warning("notification channel %s of team %s disabled: %s", channel.pk,
                       channel.team.name, reason)


def _finish(delivery: Delivery, status: str, status_code: int | None, error: str) -> None:
    delivery.status, delivery.finished_at = status, timezone.now()
    delivery.last_status_code, delivery.last_error = status_code, error
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status, finished_at=delivery.finished_at, last_status_code=status_code,
        last_error=error, next_attempt_at=None)


def body_of(delivery: Delivery) -> bytes:
    """The exact bytes a webhook receives (and that the signature covers)."""
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


def _post(delivery: Delivery, timeout: float,
          allowed: tuple[webhook_guard.Network, ...]) -> _Sent:
    target = urlsplit(delivery.channel.target)
    try:
        # Resolved once and checked here; the connection goes to this very address.
        address = webhook_guard.checked_address(
            target.hostname or "", target.port or (443 if target.scheme == "https" else 80),
            allowed)
    except webhook_guard.Refused as refused:
        return _Sent(False, False, None, str(refused))
    except (OSError, ValueError):
        return _Sent(False, True, None, "could not resolve the host name")
    body = body_of(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(body, delivery.channel.secret),
        ALGORITHM_HEADER: ALGORITHM,
        DELIVERY_HEADER: str(delivery.pk),
        EVENT_HEADER: delivery.event,
    }
    session = requests.Session()
    session.mount("http://", webhook_guard.PinnedAdapter(address, target.hostname or ""))
    session.mount("https://", webhook_guard.PinnedAdapter(address, target.hostname or ""))
    try:
        answer = session.post(delivery.channel.target, data=body, headers=headers,
                              timeout=(timeout, timeout), allow_redirects=False)
    except requests.Timeout:
        return _Sent(False, True, None, f"no answer within {timeout} s")
    except requests.ConnectionError:
        return _Sent(False, True, None, "could not connect, or the connection dropped")
    except requests.RequestException as exc:
        # The exception's text names the URL: only its kind is kept.
        return _Sent(False, False, None, f"could not send ({type(exc).__name__})")
    finally:
        session.close()
    code = answer.status_code
    answer.close()
    if 200 <= code < 300:
        return _Sent(True, False, code, "")
    retry = code >= 500 or code in RETRIED_HTTP_STATUSES
    what = "redirects are not followed" if 300 <= code < 400 else (
        "retried" if retry else "refused; not retried")
    return _Sent(False, retry, code, f"HTTP {code} ({what})")


def _email(delivery: Delivery) -> _Sent:
    subject, text = email_text(delivery.payload)
    try:
        send_mail(subject, text, None, [delivery.channel.target], fail_silently=False)
    except smtplib.SMTPRecipientsRefused:
        return _Sent(False, False, None, "the mail server refused the address")
    except (smtplib.SMTPException, OSError) as exc:
        return _Sent(False, True, None, f"could not send ({type(exc).__name__})")
    return _Sent(True, False, None, "")


def email_text(payload: dict[str, Any]) -> tuple[str, str]:
    """A notification's email: a one-line subject and a plain-text body."""
    event = payload["event"]
    request = payload.get("request")
    resource = payload.get("resource")
    if request:
        what = (f"{request['action']} {request['resource_type']} "
                f"{request['environment']}/{request['name']}")
    elif resource:
        what = f"{resource['resource_type']} {resource['environment']}/{resource['name']}"
    else:
        run = payload.get("reconcile_run", {})
        what = (f"{payload.get('findings_total', len(payload.get('findings', [])))} "
                "resource(s) drifted or missing in "
                f"{run.get('environment', '?')}")
    subject = f"[KRP] {event.replace('_', ' ')}: {what}"
    lines = [f"Team {payload.get('team', '?')}: {event.replace('_', ' ')} - {what}", ""]
    if request:
        lines += [f"Status: {request['status']}", f"Request: {request['url']}"]
        if request.get("error"):
            lines.append(f"Error: {request['error']['code']}: {request['error']['message']}")
        if payload.get("message"):
            lines.append(f"Note: {payload['message']}")
    if resource:
        lines += [f"Resource: {resource['url']}", f"ARN: {resource['arn']}"]
        lines += [f"{key}: {value}" for key, value in sorted(payload.get("details", {}).items())]
    for finding in payload.get("findings", []):
        found = finding["resource"]
        lines.append(f"- {finding['kind']}: {found['resource_type']} {found['name']} "
                     f"({found['url']})")
    lines += ["", f"Delivery {payload['delivery']} at {payload['created_at']}"]
    return subject, "\n".join(lines) + "\n"
