"""A team's notification channels: register, remove, enable again.

A webhook's secret is made here and handed back once, to the caller who registered the
channel (the API's 201, the admin's message); nothing shows it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from dependency_injector.wiring import Provide, inject
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning import webhook_guard
from provisioning.errors import InvalidRequest, NotAllowed
from provisioning.models import ChannelKind, NotificationChannel, NotificationEvent
from provisioning.services.submission import choose_team
from provisioning.webhook_signing import new_secret

logger = logging.getLogger(__name__)

MAX_TARGET_LENGTH = 2048


@inject
def check_channel(*, kind: Any, target: Any, events: Any,
                  settings: KrpSettings = Provide[CoreContainer.settings],
                  ) -> tuple[str, str, list[str]]:
    """The kind, target and events of a channel as given, checked: InvalidRequest naming
    each wrong field (`kind`, `url` or `email`, `events`). A webhook's host must be one
    it may reach (webhook_guard): refused here if it is an IP literal or a name resolving
    to an address it may not reach; a name that does not resolve yet is let through, for
    a receiver not up yet (each delivery checks again)."""
    problems: dict[str, list[str]] = {}
    if kind not in ChannelKind.values:
        problems["kind"] = [f"must be one of {', '.join(ChannelKind.values)}"]
    field = "email" if kind == ChannelKind.EMAIL else "url"
    problem = (_email_problem(target) if kind == ChannelKind.EMAIL
               else _url_problem(target, settings.webhook_allowed_networks))
    if problem:
        problems[field] = [problem]
    if (not isinstance(events, list) or not events
            or not all(isinstance(event, str) for event in events)):
        problems["events"] = [f"a non-empty list of {', '.join(NotificationEvent.values)}"]
    else:
        unknown = sorted(set(events) - set(NotificationEvent.values))
        if unknown:
            problems["events"] = [f"unknown: {', '.join(unknown)}; known: "
                                  f"{', '.join(NotificationEvent.values)}"]
    if problems:
        raise InvalidRequest.about_each(problems, "invalid_channel")
    # In the order events are listed, each once.
    return kind, target.strip(), [e for e in NotificationEvent.values if e in events]


def _url_problem(url: Any, allowed: tuple[webhook_guard.Network, ...]) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return "an http:// or https:// URL is required"
    if len(url) > MAX_TARGET_LENGTH:
        return f"at most {MAX_TARGET_LENGTH} characters"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "an http:// or https:// URL with a host is required"
    if parts.username is not None or parts.password is not None:
        # It would be stored, shown in lists and logs: credentials go in the secret.
        return "must not carry credentials (user:password@); the signature authenticates KRP"
    return _host_problem(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                         allowed)


def _host_problem(host: str, port: int, allowed: tuple[webhook_guard.Network, ...],
                  ) -> str | None:
    address = webhook_guard.literal(host)
    if address is not None:
        reason = webhook_guard.refusal(address, allowed)
        return webhook_guard.explain(f"{address} is", reason) if reason else None
    try:
        addresses = webhook_guard.resolve(host, port)
    except (OSError, ValueError):
        return None  # not resolvable (yet): each delivery checks again
    for address in addresses:
        reason = webhook_guard.refusal(address, allowed)
        if reason:
            # Which address is not said: the answer would map the private network's names.
            return webhook_guard.explain(f"{host} resolves to", reason)
    return None


def _email_problem(address: Any) -> str | None:
    if not isinstance(address, str):
        return "an email address is required"
    try:
        validate_email(address.strip())
    except ValidationError:
        return "not a valid email address"
    return None


def channel_register(*, user: AbstractBaseUser, kind: Any, target: Any, events: Any,
                     team: Group | str | None = None,
                     ) -> tuple[NotificationChannel, str | None]:
    """Register a channel for one of the user's teams (chosen as a submission's is);
    returns it with its webhook secret, which is never shown again (None for email)."""
    teams = list(user.groups.order_by("name"))
    chosen = choose_team(teams, team)
    return channel_create(team=chosen, kind=kind, target=target, events=events,
                          created_by=user)


def channel_create(*, team: Group, kind: Any, target: Any, events: Any,
                   created_by: AbstractBaseUser | None) -> tuple[NotificationChannel, str | None]:
    """Create a channel for `team` (an operator may choose any); returns it with its
    webhook secret, to be shown once."""
    kind, target, events = check_channel(kind=kind, target=target, events=events)
    secret = new_secret() if kind == ChannelKind.WEBHOOK else ""
    channel = NotificationChannel.objects.create(
        team=team, kind=kind, target=target, events=events, secret=secret,
        created_by=created_by)
    logger.info("notification channel %s (%s) registered for team %s", channel.pk, kind,
                team.name)
    return channel, secret or None


def channel_remove(*, channel: NotificationChannel, user: AbstractBaseUser) -> None:
    """Remove a channel and its delivery log."""
    _check_member(channel, user)
    channel.delete()
    logger.info("notification channel %s of team %s removed by %s", channel.pk,
                channel.team.name, user.get_username())


def channel_enable(*, channel: NotificationChannel, user: AbstractBaseUser,
                   ) -> NotificationChannel:
    """Enable a channel that was disabled for failing; its failure count starts again."""
    _check_member(channel, user)
    with transaction.atomic():
        NotificationChannel.objects.filter(pk=channel.pk).update(
            enabled=True, consecutive_failures=0, disabled_at=None, disabled_reason="")
    channel.refresh_from_db()
    logger.info("notification channel %s of team %s enabled by %s", channel.pk,
                channel.team.name, user.get_username())
    return channel


def channels_enable(*, channels: Iterable[NotificationChannel], user: AbstractBaseUser) -> int:
    """Enable each of `channels` (the admin's action); how many were disabled."""
    count = 0
    for channel in channels:
        if not channel.enabled:
            channel_enable(channel=channel, user=user)
            count += 1
    return count


def _check_member(channel: NotificationChannel, user: AbstractBaseUser) -> None:
    if user.is_superuser or user.groups.filter(pk=channel.team_id).exists():
        return
    raise NotAllowed(f"the channel belongs to team {channel.team.name}", "other_team")
