"""krp stack submit / status / approve / cancel / retry / delete / extend: stacks from the
command line.

The same services as the API, acting as the user --user (or KRP_USER) names, with the same
team scope as `krp submit` and `krp status`: another team's stack is "not found".
A stack document is read from a JSON or YAML file (or stdin), or made from a blueprint.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from containers.durations import format_duration
from provisioning import selectors
from provisioning.cli import Subcommand, add_subcommands, chosen
from provisioning.cli.records import (
    StatusCommand,
    TransitionCommand,
    acting_user,
    add_user_option,
    outcome,
    refusal,
    runs_here,
)
from provisioning.cli.requests import when
from provisioning.cli.stack_input import parameters_given, read_document
from provisioning.errors import InvalidRequest, KrpError
from provisioning.models import (
    ACTIVE_STACK_STATUSES,
    RequestEvent,
    Stack,
    StackMember,
    StackStatus,
)
from provisioning.services import (
    stack_approve,
    stack_cancel,
    stack_delete,
    stack_retry,
    stack_submit,
)
from provisioning.services.blueprints import blueprint_instantiate, blueprint_version
from provisioning.services.stack_expiry import stack_extend

BLUEPRINT_ONLY = ("env", "name", "version", "param", "team", "ttl", "expires_at")


def _refusal(exc: KrpError) -> CommandError:
    """A service's refusal as the operator reads it: bad input one field a line."""
    if isinstance(exc, InvalidRequest) and exc.fields:
        return CommandError(f"{exc.code}:\n" + "\n".join(
            f"  {field}: {problem}" for field, problems in exc.fields.items()
            for problem in problems))
    return refusal(exc)


def _stack(stack_id: str, user) -> Stack:
    """The stack if `user` may see it (one of their teams', any for a superuser)."""
    try:
        return selectors.visible_to(Stack.objects.select_related(
            "team", "requested_by", "blueprint__blueprint"), user=user).get(pk=stack_id)
    except (Stack.DoesNotExist, ValueError, ValidationError):  # or not a UUID
        raise CommandError(f"no stack {stack_id}") from None


def _members(stack: Stack) -> list[StackMember]:
    return list(stack.members.select_related("request", "delete_request"))


def _member_error(member: StackMember) -> dict[str, str] | None:
    for request in (member.delete_request, member.request):
        if request is not None and request.error_code:
            return {"code": request.error_code, "message": request.error_message}
    if member.error_code:
        return {"code": member.error_code, "message": member.error_message}
    return None


def _document(stack: Stack) -> dict[str, Any]:
    """The stack with its members and events, as `--json` prints it."""
    return {
        "id": str(stack.pk), "environment": stack.environment, "name": stack.name,
        "status": stack.status, "action": stack.action, "team": stack.team.name,
        "requested_by": stack.requested_by.username, "rollback": stack.rollback,
        "blueprint": str(stack.blueprint) if stack.blueprint else None,
        "parameters": stack.parameters, "error": stack.error,
        "ttl": format_duration(stack.ttl) if stack.ttl is not None else None,
        "expires_at": stack.expires_at, "expiry_warnings": stack.expiry_warnings,
        "expiry_problem": stack.expiry_problem, "created_at": stack.created_at,
        "started_at": stack.started_at, "finished_at": stack.finished_at,
        "members": [
            {"key": m.key, "resource_type": m.resource_type, "name": m.name,
             "status": selectors.member_status(m), "depends_on": m.depends_on,
             "request": str(m.request_id) if m.request_id else None,
             "delete_request": str(m.delete_request_id) if m.delete_request_id else None,
             "error": _member_error(m)}
            for m in _members(stack)
        ],
        "events": [
            {"created_at": e.created_at, "from_status": e.from_status,
             "to_status": e.to_status, "actor": e.actor, "message": e.message}
            for e in stack.events.order_by("created_at", "id")
        ],
    }


def _out_members(sub: Subcommand, stack: Stack) -> None:
    members = _members(stack)
    width = max([len(m.key) for m in members] + [6])
    sub.out(f"  {'member':<{width}} {'type':<15} {'status':<16} {'depends on':<20} name")
    for m in members:
        sub.out(f"  {m.key:<{width}} {m.resource_type:<15} {selectors.member_status(m):<16} "
                f"{', '.join(m.depends_on) or '-':<20} {m.name}")


# The actions ------------------------------------------------------------------------------


class Submit(Subcommand):
    name = "submit"
    help = "submit a stack: a JSON or YAML document, or a blueprint with parameters"
    description = ("Record a stack from FILE (JSON or YAML; - reads stdin) or from "
                   "--blueprint with --env, --name and --param NAME=VALUE; --wait follows it "
                   "to the end and exits non-zero unless it succeeded.")

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_option(parser)
        parser.add_argument("file", nargs="?", metavar="FILE",
                            help="the stack document (JSON or YAML; - for stdin)")
        parser.add_argument("--blueprint", help="instantiate this blueprint instead of FILE")
        parser.add_argument("--version", type=int, help="the blueprint's version "
                            "(default: its latest)")
        parser.add_argument("--env", help="environment (with --blueprint)")
        parser.add_argument("--name", help="the stack's name (with --blueprint)")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                            help="a blueprint parameter; VALUE is read as JSON when it is")
        parser.add_argument("--team", help="team (with --blueprint; needed if you are in "
                            "several)")
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument("--ttl", help="with --blueprint: how long the stack lives once "
                              "it succeeds, e.g. 3d (a FILE says its own ttl)")
        lifetime.add_argument("--expires-at", help="with --blueprint: when it expires (ISO "
                              "8601 with a zone)")
        parser.add_argument("--idempotency-key", help="submitting again returns the first")
        parser.add_argument("--wait", action="store_true",
                            help="follow the stack until it settles")
        parser.add_argument("--timeout", type=float, default=1800.0,
                            help="seconds --wait waits (default 1800)")

    def run(self, options: dict[str, Any]) -> None:
        user = acting_user(options)
        try:
            document, version, parameters = self.document(options)
            environment = document.get("environment") if isinstance(document, dict) else None
            if isinstance(environment, str):
                runs_here(environment)
            stack, created = stack_submit(
                user=user, document=document, blueprint=version, parameters=parameters,
                idempotency_key=options["idempotency_key"])
        except KrpError as exc:
            raise _refusal(exc) from None
        stack = _stack(str(stack.pk), user)  # in eager mode it has run since
        if not options["json"]:
            self.out(f"stack {stack.pk} {'recorded' if created else 'already recorded'}: "
                     f"{stack} is {outcome(stack)}")
            if not options["wait"]:
                _out_members(self, stack)
        if options["wait"]:
            stack = follow(self, stack, timeout=options["timeout"], quiet=options["json"])
        if options["json"]:
            self.out_json(_document(stack))
        if options["wait"] and stack.status != StackStatus.SUCCEEDED:
            raise CommandError(f"stack {stack.pk} ended {outcome(stack)}")

    def document(self, options: dict[str, Any]) -> tuple[Any, Any, dict[str, Any] | None]:
        """The stack document, with the blueprint version and parameters it came from."""
        if options["file"] is not None:
            given = [f"--{o}" for o in BLUEPRINT_ONLY if options[o] not in (None, [])]
            if options["blueprint"] is not None or given:
                raise CommandError(f"{', '.join(given or ['--blueprint'])}: not with FILE "
                                   "(the document says its environment, name and team)")
            return read_document(options["file"]), None, None
        if options["blueprint"] is None:
            raise CommandError("say what to submit: a FILE (JSON or YAML; - for stdin) or "
                               "--blueprint NAME")
        missing = [f"--{o}" for o in ("env", "name") if options[o] is None]
        if missing:
            raise CommandError(f"{' and '.join(missing)}: required with --blueprint")
        version = blueprint_version(name=options["blueprint"], version=options["version"])
        parameters = parameters_given(options["param"])
        document = blueprint_instantiate(version, environment=options["env"],
                                         name=options["name"], parameters=parameters,
                                         team=options["team"])
        # As the API's blueprint body: its lifetime goes into the document, checked there.
        if options["ttl"] is not None:
            document["ttl"] = options["ttl"]
        if options["expires_at"] is not None:
            document["expires_at"] = options["expires_at"]
        return document, version, parameters


def follow(sub: Subcommand, stack: Stack, *, timeout: float, quiet: bool) -> Stack:
    """Print each status change of the stack and of its members' requests, oldest first,
    until the stack settles. In eager mode it has settled already: this prints its story."""
    seen: set[tuple[str, int]] = set()
    deadline = time.monotonic() + timeout
    while True:
        stack.refresh_from_db()
        settled = stack.status not in ACTIVE_STACK_STATUSES | {StackStatus.PENDING_APPROVAL}
        for key, line in _changes(stack):
            if key not in seen:
                seen.add(key)
                (sub.progress if quiet else sub.out)(line)
        if settled:
            return stack
        if time.monotonic() > deadline:
            raise CommandError(f"stack {stack.pk} is still {stack.status} after "
                               f"{timeout:.0f} s")
        time.sleep(0.5)


def _changes(stack: Stack) -> list[tuple[tuple[str, int], str]]:
    """(an id, a line) for each event of the stack and of its members' requests."""
    found = [(e.created_at, ("stack", e.pk), f"stack: {e.from_status or '-'} -> "
              f"{e.to_status} ({e.actor}) {e.message}")
             for e in stack.events.all()]
    for e in RequestEvent.objects.filter(request__stack=stack).select_related("request"):
        what = e.request.stack_member + (" (delete)" if e.request.action == "delete" else "")
        found.append((e.created_at, ("request", e.pk),
                      f"{what}: {e.from_status or '-'} -> {e.to_status} ({e.actor}) "
                      f"{e.message}"))
    found.sort(key=lambda f: (f[0], f[1]))
    return [(key, f"{at:%H:%M:%S} {line}") for at, key, line in found]


class Status(StatusCommand):
    name = "status"
    help = "one stack with its members and events, or a table of recent ones"
    noun = "stack"
    statuses = StackStatus.values
    find = staticmethod(_stack)
    document = staticmethod(_document)

    def show(self, document: dict[str, Any]) -> None:
        for key in ("id", "status", "action", "environment", "name", "team", "requested_by",
                    "blueprint", "created_at", "ttl", "expires_at"):
            if document[key] is not None:
                self.out(f"{key:>12}: {document[key]}")
        for warning in document["expiry_warnings"]:
            self.out(f"{'warned':>12}: {warning['before']} before (at {warning['sent_at']}, "
                     f"{warning['left']} left)")
        if document["expiry_problem"]:
            self.out(f"{'expiry':>12}: {document['expiry_problem']}")
        if document["parameters"]:
            self.out(f"{'parameters':>12}: {json.dumps(document['parameters'], sort_keys=True)}")
        if document["error"]:
            self.out(f"{'error':>12}: {document['error']['code']}: "
                     f"{document['error']['message']}")
        self.out("members:")
        for m in document["members"]:
            self.out(f"  {m['key']}: {m['resource_type']} {m['name']} is {m['status']}")
            self.out(f"    depends on: {', '.join(m['depends_on']) or '-'}")
            if m["request"]:
                self.out(f"    request: {m['request']}")
            if m["delete_request"]:
                self.out(f"    delete request: {m['delete_request']}")
            if m["error"]:
                self.out(f"    error: {m['error']['code']}: {m['error']['message']}")
        self.show_events(document)

    def table(self, options: dict[str, Any], user) -> None:
        filters = {name: options[option] for name, option in (("environment", "env"),
                                                               ("status", "status"))
                   if options[option]}
        rows = list(selectors.stack_list(user=user, filters=filters)[: options["limit"]])
        if options["json"]:
            self.out_json([
                {"id": str(s.pk), "status": s.status, "action": s.action,
                 "environment": s.environment, "name": s.name, "team": s.team.name,
                 "expires_at": s.expires_at, "created_at": s.created_at}
                for s in rows
            ])
            return
        self.out(f"{'id':<36}  {'status':<16} {'env':<8} {'expires':<25} name")
        for s in rows:
            expires = s.expires_at.isoformat(timespec="seconds") if s.expires_at else "-"
            self.out(f"{s.pk!s:<36}  {s.status:<16} {s.environment:<8} {expires:<25} "
                     f"{s.name}")


class _Transition(TransitionCommand):
    noun = "stack"
    find = staticmethod(_stack)
    document = staticmethod(_document)
    refused = staticmethod(_refusal)
    print_parts = _out_members


class Approve(_Transition):
    name = "approve"
    help = "approve a stack (its creation or its deletion) that waits for approval"
    service = staticmethod(stack_approve)
    verb = "approved"
    approving = True


class Cancel(_Transition):
    name = "cancel"
    help = "withdraw a stack (or its deletion) that waits for approval"
    service = staticmethod(stack_cancel)
    verb = "cancelled"
    runs_job = False


class Retry(_Transition):
    name = "retry"
    help = "run a failed or rolled-back stack again"
    service = staticmethod(stack_retry)
    verb = "retried"


class Delete(_Transition):
    name = "delete"
    help = "delete a stack's members, dependents first"
    service = staticmethod(stack_delete)
    verb = "deletion asked"


class Extend(Subcommand):
    name = "extend"
    help = "give a stack a new expiry (--ttl from now, or --expires-at)"
    description = ("Set when a stack of your team expires, as a whole (its members have no "
                   "expiry of their own): --ttl counts from now, --expires-at names the "
                   "moment; either within its environment's max_ttl from now. The warnings "
                   "already sent are reset. When it expires, the sweep asks for its deletion "
                   "(as krp-expiry).")

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_option(parser)
        parser.add_argument("id", help="the stack's id")
        lifetime = parser.add_mutually_exclusive_group(required=True)
        lifetime.add_argument("--ttl", help="how long from now, e.g. 3d, 12h, 1d12h")
        lifetime.add_argument("--expires-at", help="ISO 8601 time with a zone")

    def run(self, options: dict[str, Any]) -> None:
        user = acting_user(options)
        stack = _stack(options["id"], user)
        try:
            extended = stack_extend(stack_id=stack.pk, user=user, ttl=options["ttl"],
                                    expires_at=when(options["expires_at"], "--expires-at"))
        except KrpError as exc:
            raise _refusal(exc) from None
        if options["json"]:
            self.out_json(_document(extended))
            return
        self.out(f"stack {extended.pk} ({extended}) now expires at "
                 f"{extended.expires_at.isoformat()}")


ACTIONS: list[type[Subcommand]] = [Submit, Status, Approve, Cancel, Retry, Delete, Extend]


class StackCommands(Subcommand):
    name = "stack"
    help = ("stacks: several resources in one request (submit, status, approve, cancel, "
            "retry, delete, extend)")
    description = ("Stacks: resources asked for together, wired by references, created in "
                   "dependency order and undone as one. `krp stack <action> --help` for each.")
    json_option = False  # each action takes --json

    def add_arguments(self, parser: CommandParser) -> None:
        add_subcommands(self.command, parser, ACTIONS, dest="stack_action", metavar="action")

    def run(self, options: dict[str, Any]) -> None:
        chosen(ACTIONS, options["stack_action"])(self.command).run(options)
