"""krp resources: the inventory of your teams, with each resource's expiry; or one resource
with its expiry, the warnings sent and its events.

The same selector and filters as GET /api/v1/resources/ (an unknown environment, type or
status is refused naming the known ones), and `--json` prints the API's documents.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from containers.durations import UNITS, parse_duration
from provisioning import selectors
from provisioning.api.serializers import ResourceSerializer
from provisioning.cli.records import StatusCommand, refusal
from provisioning.errors import KrpError
from provisioning.models import GONE_STATUSES, Resource, ResourceStatus

NEWEST_FIRST = ("-created_at", "-id")


def _resource(resource_id: str, user) -> Resource:
    """The resource if `user` may see it (one of their teams', any for a superuser)."""
    try:
        return selectors.resource_list(user=user).get(pk=resource_id)
    except (Resource.DoesNotExist, ValueError, ValidationError):  # or not a UUID
        raise CommandError(f"no resource {resource_id}") from None


def _api_document(resource: Resource) -> dict[str, Any]:
    """The resource as GET /api/v1/resources/<id>/ answers it."""
    return json.loads(json.dumps(ResourceSerializer(resource).data, default=str))


def _document(resource: Resource) -> dict[str, Any]:
    """The API's document, with the resource's events (oldest first) as `krp status`
    prints a request's: extensions, warnings, expiry deletes refused."""
    events = [{"from_status": e.from_status, "to_status": e.to_status, "actor": e.actor,
               "message": e.message, "created_at": e.created_at.isoformat()}
              for e in resource.events.order_by("created_at", "id")]
    return {**_api_document(resource), "events": events}


def utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def time_left(left: timedelta) -> str:
    """`in 2d 3h` (the two largest units, rounded down), or `expired`."""
    if left <= timedelta(0):
        return "expired"
    seconds, counts = int(left.total_seconds()), []
    for unit, size in UNITS[1:]:  # days at most, as format_duration
        count, seconds = divmod(seconds, size)
        counts.append((count, unit))
    first = next((i for i, (count, _) in enumerate(counts) if count), len(counts))
    kept = [f"{count}{unit}" for count, unit in counts[first:first + 2] if count]
    return "in " + (" ".join(kept) or "0s")


def expiry(expires_at: datetime | None, *, status: str, now: datetime) -> str:
    """When it expires and how long is left; a gone resource's expiry no longer runs."""
    if expires_at is None:
        return "-"
    if status in GONE_STATUSES:
        return utc(expires_at)
    return f"{utc(expires_at)} ({time_left(expires_at - now)})"


def expiry_note(resource: Resource) -> str:
    """What the table marks: owners were warned, or the expiry delete is held."""
    notes = []
    if resource.expiry_warnings:
        notes.append(f"warned ({resource.expiry_warnings[-1]['before']} before)")
    if resource.expiry_problem:
        notes.append("expiry delete refused")
    return "; ".join(notes)


class Resources(StatusCommand):
    name = "resources"
    help = "your teams' resources with their expiry, or one resource with its events"
    description = (
        "A table of your teams' resources (every team's for a superuser), newest first, "
        "with when each expires and how long is left; `warned` marks one whose owners were "
        "warned, `expiry delete refused` one whose expiry delete could not be filed yet. "
        "--expiring-within 7d lists the live ones expiring within 7 days (and those already "
        "expired), soonest first. With an ID: that resource in full, with the warnings sent "
        "and its events (extensions, warnings, expiry deletes refused). `krp extend` gives a "
        "new expiry."
    )
    noun = "resource"
    statuses = ResourceStatus.values
    find = staticmethod(_resource)
    document = staticmethod(_document)

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--type", help="only this resource type")
        parser.add_argument("--team", help="only this team's")
        parser.add_argument("--name", help="only resources of this name")
        parser.add_argument("--expiring-within", metavar="DURATION",
                            help="only live resources expiring within this time, e.g. 7d "
                                 "(and those already expired)")

    def table(self, options: dict[str, Any], user) -> None:
        filters = {key: options[option] for key, option in (
            ("environment", "env"), ("resource_type", "type"), ("status", "status"),
            ("team", "team"), ("name", "name")) if options[option]}
        try:
            resources = selectors.resource_list(user=user, filters=filters)
        except KrpError as exc:
            raise refusal(exc) from None
        now = timezone.now()
        if options["expiring_within"]:
            try:
                within = parse_duration(options["expiring_within"])
            except ValueError as exc:
                raise CommandError(f"--expiring-within: {exc}") from None
            # What expires first comes first: that is what the question is about.
            resources = resources.filter(expires_at__lte=now + within).exclude(
                status__in=sorted(GONE_STATUSES)).order_by("expires_at", "id")
        else:
            resources = resources.order_by(*NEWEST_FIRST)
        rows = list(resources[: options["limit"]])
        if options["json"]:
            self.out_json([_api_document(resource) for resource in rows])
            return
        if not rows:
            self.out("no resources")
            return
        header = ("ENV", "TYPE", "NAME", "STATUS", "TEAM", "EXPIRES", "")
        lines = [header] + [
            (r.environment, r.resource_type, r.name, r.status, r.team.name,
             expiry(r.expires_at, status=r.status, now=now), expiry_note(r)) for r in rows]
        widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
        for line in lines:
            self.out("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
                     .rstrip())

    def show(self, document: dict[str, Any]) -> None:
        for key in ("id", "status", "environment", "resource_type", "name", "team",
                    "physical_name", "arn", "created_by_request", "created_at",
                    "last_verified_at", "deleted_at"):
            self.out(f"{key:>18}: {document[key] if document[key] is not None else '-'}")
        for key in ("spec", "tags", "outputs"):
            if document[key]:
                self.out(f"{key:>18}: {json.dumps(document[key], sort_keys=True)}")
        expires_at = document["expires_at"]
        self.out(f"{'expires':>18}: " + expiry(
            expires_at and datetime.fromisoformat(expires_at), status=document["status"],
            now=timezone.now()))
        warnings = document["expiry_warnings"]
        self.out(f"{'warnings sent':>18}: {len(warnings) or '-'}")
        for warning in warnings:
            self.out(f"{'':>20}{utc(datetime.fromisoformat(warning['sent_at']))}: "
                     f"{warning['left']} left (the {warning['before']} warning)")
        if document["expiry_problem"]:
            self.out(f"{'expiry problem':>18}: {document['expiry_problem']}")
        self.show_events(document)
