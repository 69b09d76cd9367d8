"""krp submit / status / approve / cancel / retry: requests from the command line.

The same services as the API and the admin, acting as the Django user named by --user
(or KRP_USER), with the same team scope: another team's request is "not found" to them.
`status` asks for a user too: the command line is not a way around the teams.

Bad arguments are refused with a message naming them, never a traceback.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from provisioning import selectors
from provisioning.api.limits import object_without_duplicate_keys
from provisioning.api.serializers import RequestDetailSerializer
from provisioning.cli import Subcommand
from provisioning.cli.records import (
    StatusCommand,
    TransitionCommand,
    acting_user,
    add_user_option,
    outcome,
    refusal,
    runs_here,
)
from provisioning.errors import KrpError
from provisioning.models import TERMINAL_STATUSES, RequestAction, RequestStatus, ResourceRequest
from provisioning.services import request_approve, request_cancel, request_retry, request_submit
from provisioning.services.dispatch import runs_in_process
from provisioning.services.dry_runs import request_dry_run


def _request(request_id: str, user) -> ResourceRequest:
    """The request if `user` may see it (one of their teams', any for a superuser)."""
    try:
        return selectors.request_detail(user=user).get(pk=request_id)
    except (ResourceRequest.DoesNotExist, ValueError, ValidationError):  # or not a UUID
        raise CommandError(f"no request {request_id}") from None


def _now(request: ResourceRequest, user) -> ResourceRequest:
    """The request to print as recorded. In eager mode its job ran when the change
    committed, before the service returned: the request as it is now. With workers, the
    request as the service recorded it (a worker may have started it already; --wait
    prints each change from there)."""
    if not runs_in_process():
        return request
    return _request(str(request.pk), user)


def _document(request: ResourceRequest) -> dict[str, Any]:
    return json.loads(json.dumps(RequestDetailSerializer(request).data, default=str))


def when(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:  # well formed but impossible, e.g. 30 February
        moment = None
    if moment is None or moment.tzinfo is None:
        raise CommandError(f"{flag}: {value!r} is not an ISO 8601 time with a zone "
                           "(e.g. 2026-12-01T09:00:00Z)")
    return moment


def _spec(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    except OSError as exc:
        raise CommandError(f"--spec: cannot read {value[1:]} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise CommandError(f"--spec: {value[1:]} is not a UTF-8 text file") from None
    try:
        # As the API reads a body: a key given twice is refused, not "last one wins".
        spec = json.loads(text, object_pairs_hook=object_without_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--spec: not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise CommandError("--spec: nested too deeply") from None
    except KrpError as exc:
        raise CommandError(f"--spec: {exc.message.removeprefix('body: ')}") from None
    if not isinstance(spec, dict):
        # `--spec null` would otherwise mean "no spec"; the API refuses a null spec too.
        raise CommandError(f"--spec: must be a JSON object, not {json.dumps(spec)[:40]}")
    return spec


def _tags(pairs: list[str]) -> dict[str, str] | None:
    if not pairs:
        return None
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"--tag {pair!r}: use KEY=VALUE")
        tags[key] = value
    return tags


class Submit(Subcommand):
    name = "submit"
    help = "submit a request (the same fields as the API)"
    description = ("Record a request to create, update or delete a resource; --wait follows "
                   "it to the end and exits non-zero unless it succeeded.")

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_option(parser)
        parser.add_argument("--env", required=True, help="environment, e.g. alpha")
        parser.add_argument("--type", required=True, help="resource type, e.g. s3_bucket")
        parser.add_argument("--name", required=True, help="the resource's name in KRP")
        parser.add_argument("--action", default=RequestAction.CREATE,
                            choices=RequestAction.values)
        parser.add_argument("--spec", help="spec as JSON, or @file.json")
        parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--team", help="team (needed if you are in several)")
        parser.add_argument("--not-before", help="ISO 8601 time: do not start before")
        parser.add_argument("--deadline", help="ISO 8601 time: expire if not started by")
        parser.add_argument("--idempotency-key", help="submitting again returns the first")
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument("--ttl", help="create, import or update: how long the resource "
                              "lives once it succeeds, e.g. 7d, 12h, 1d12h")
        lifetime.add_argument("--expires-at", help="create, import or update: ISO 8601 time "
                              "(with a zone) when the resource expires")
        parser.add_argument("--wait", action="store_true",
                            help="follow the request to a terminal status")
        parser.add_argument("--timeout", type=float, default=900.0,
                            help="seconds --wait waits (default 900)")
        parser.add_argument("--physical-name", metavar="NAME_OR_ARN",
                            help="--action import: the existing resource's name in AWS, or "
                                 "its ARN")
        parser.add_argument("--plan", action="store_true",
                            help="a dry run: check and print what it would change; "
                                 "records nothing")

    def run(self, options: dict[str, Any]) -> None:
        user = acting_user(options)
        not_before = when(options["not_before"], "--not-before")
        if options["plan"]:
            return self.dry_run(options, user, not_before)
        runs_here(options["env"], later=bool(not_before and not_before > timezone.now()))
        try:
            request, created = request_submit(
                user=user, environment=options["env"],
                resource_type=options["type"], name=options["name"],
                action=options["action"], spec=_spec(options["spec"]),
                tags=_tags(options["tag"]), team=options["team"],
                not_before=not_before,
                deadline=when(options["deadline"], "--deadline"),
                idempotency_key=options["idempotency_key"],
                physical_name=options["physical_name"], ttl=options["ttl"],
                expires_at=when(options["expires_at"], "--expires-at"),
            )
        except KrpError as exc:
            raise refusal(exc) from None
        request = _now(request, user)
        if not options["json"]:
            self.out(f"request {request.pk} {'recorded' if created else 'already recorded'}: "
                     f"{request} is {outcome(request)}")
        if options["wait"]:
            request = follow(self, request, timeout=options["timeout"],
                             quiet=options["json"])
        if options["json"]:
            self.out_json(_document(request))
        if options["wait"] and request.status != RequestStatus.SUCCEEDED:
            raise CommandError(f"request {request.pk} ended {request.status}"
                               + (f": {request.error_message}" if request.error_code else ""))


    def dry_run(self, options: dict[str, Any], user, not_before) -> None:
        """--plan: what the request would change, as a plan's lines (or its document)."""
        if options["wait"] or options["idempotency_key"]:
            raise CommandError("--plan records nothing: --wait and --idempotency-key do "
                               "not go with it")
        try:
            answer = request_dry_run(
                user=user, environment=options["env"], resource_type=options["type"],
                name=options["name"], action=options["action"], spec=_spec(options["spec"]),
                tags=_tags(options["tag"]), team=options["team"], not_before=not_before,
                deadline=when(options["deadline"], "--deadline"),
                physical_name=options["physical_name"], ttl=options["ttl"],
                expires_at=when(options["expires_at"], "--expires-at"))
        except KrpError as exc:
            raise refusal(exc) from None
        if options["json"]:
            self.out_json(answer)
            return
        for line in answer["plan"]["lines"]:
            self.out(line)


def follow(sub: Subcommand, request: ResourceRequest, *, timeout: float,
           quiet: bool) -> ResourceRequest:
    """Print each event of the request until it reaches a terminal status."""
    seen, deadline = 0, time.monotonic() + timeout
    while True:
        events = list(request.events.order_by("created_at", "id"))
        for event in events[seen:]:
            line = (f"{event.created_at:%H:%M:%S} {event.from_status or '-'} -> "
                    f"{event.to_status} ({event.actor}) {event.message}")
            if quiet:
                sub.progress(line)
            else:
                sub.out(line)
        seen = len(events)
        request.refresh_from_db()
        if request.status in TERMINAL_STATUSES and seen >= request.events.count():
            return request
        if time.monotonic() > deadline:
            raise CommandError(f"request {request.pk} is still {request.status} after "
                               f"{timeout:.0f} s")
        time.sleep(0.5)


class Status(StatusCommand):
    name = "status"
    help = "one request with its events, or a table of recent ones"
    noun = "request"
    statuses = RequestStatus.values
    find = staticmethod(_request)
    document = staticmethod(_document)

    def show(self, document: dict[str, Any]) -> None:
        for key in ("id", "status", "environment", "resource_type", "name", "action", "team",
                    "requested_by", "attempts", "task_id", "task_status", "created_at"):
            self.out(f"{key:>14}: {document[key]}")
        for key in ("ttl", "expires_at"):  # the lifetime it asked for, if any
            if document[key]:
                self.out(f"{key:>14}: {document[key]}")
        if document["outputs"]:
            self.out(f"{'outputs':>14}: {json.dumps(document['outputs'], sort_keys=True)}")
        if document["error"]:
            self.out(f"{'error':>14}: {document['error']['code']}: "
                     f"{document['error']['message']}")
        plan = document.get("plan")
        self.out(f"{'plan':>14}: " + ("not planned yet" if plan is None else ""))
        for line in (plan or {}).get("lines", []):
            self.out(f"{'':>16}{line}")
        self.show_events(document)

    def table(self, options: dict[str, Any], user) -> None:
        try:
            rows = selectors.request_list(
                user=user, filters={"environment": options["env"], "status": options["status"]},
            )
        except KrpError as exc:
            raise refusal(exc) from None
        rows = list(rows[: options["limit"]])
        if options["json"]:
            self.out_json([
                {"id": str(r.pk), "status": r.status, "environment": r.environment,
                 "resource_type": r.resource_type, "name": r.name, "action": r.action,
                 "team": r.team.name, "attempts": r.attempts, "created_at": r.created_at}
                for r in rows
            ])
            return
        self.out(f"{'id':<36}  {'status':<16} {'env':<8} {'type':<15} {'action':<7} name")
        for r in rows:
            self.out(f"{r.pk!s:<36}  {r.status:<16} {r.environment:<8} {r.resource_type:<15} "
                     f"{r.action:<7} {r.name}")


class _Transition(TransitionCommand):
    noun = "request"
    find = staticmethod(_request)
    document = staticmethod(_document)


class Approve(_Transition):
    name = "approve"
    help = "approve a request that waits for approval (needs the approve permission)"
    service = staticmethod(request_approve)
    verb = "approved"
    approving = True


class Cancel(_Transition):
    name = "cancel"
    help = "cancel a request that has not started"
    service = staticmethod(request_cancel)
    verb = "cancelled"
    runs_job = False


class Retry(_Transition):
    name = "retry"
    help = "run a failed, cancelled or expired request again"
    service = staticmethod(request_retry)
    verb = "queued again"
