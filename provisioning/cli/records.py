"""What the request and the stack commands share: the user they act as (--user or
KRP_USER), the eager-mode check before anything is recorded, and the two commands that
read or move one record of the user's teams: `status` and a transition (approve, cancel,
retry, delete). Another team's record is "not found" to them, as in the API."""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from dependency_injector.wiring import Provide, inject
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.cli import Subcommand
from provisioning.cloud import IdentityGuard
from provisioning.errors import KrpError

MAX_LIMIT = 1000
# The first user bin/start makes; named when nobody says who acts, if it exists.
START_USER = "admin"


def acting_user(options: dict[str, Any]):
    name = options.get("user") or os.environ.get("KRP_USER")
    if not name:
        hint = ""
        if get_user_model().objects.filter(username=START_USER).exists():
            hint = f"; bin/start made the user {START_USER!r}: export KRP_USER={START_USER}"
        raise CommandError("say who you act as: set KRP_USER=<username> or pass "
                           f"--user <username>{hint}")
    if "\x00" in name:
        raise CommandError(f"--user: no user called {name!r}")
    try:
        return get_user_model().objects.get(username=name)
    except get_user_model().DoesNotExist:
        raise CommandError(f"--user: no user called {name!r}") from None


def add_user_option(parser: CommandParser) -> None:
    parser.add_argument("--user", help="act as this Django user (default: $KRP_USER)")


@inject
def runs_here(environment: str, *, approving: bool = False, later: bool = False,
              settings: KrpSettings = Provide[CoreContainer.settings],
              guard: IdentityGuard = Provide[CoreContainer.identity_guard]) -> None:
    """In eager mode this very process runs the job as soon as it is queued: refuse before
    anything is recorded if it cannot reach the environment (no credentials, the sandbox
    not running), instead of recording a request bound to fail or to wait out its retries.
    Nothing runs now for a request that waits for approval (unless `approving` it) or is
    due `later`. The guard remembers its answer, so the job does not ask again."""
    if settings.task_mode != "eager" or later or environment not in settings.environment_names:
        return
    if settings.environment(environment).requires_approval and not approving:
        return
    try:
        guard.confirm(environment)
    except KrpError as exc:
        raise CommandError(f"{exc.code}: {exc.message} (in eager mode this process runs the "
                           "job itself; nothing was recorded)") from None


def outcome(record) -> str:
    """A request's or a stack's status, with its error if it has one."""
    return f"{record.status}" + (
        f": {record.error_code}: {record.error_message}" if record.error_code else "")


def refusal(exc: KrpError) -> CommandError:
    return CommandError(f"{exc.code}: {exc.message}")


class RecordCommand(Subcommand):
    """A command on the requests or the stacks (`noun`) the user may see."""

    noun: str

    @abstractmethod
    def find(self, record_id: str, user) -> Any:
        """The record if `user` may see it; "no <noun> <id>" if not (or no such record)."""

    @abstractmethod
    def document(self, record) -> dict[str, Any]:
        """The record as `--json` prints it."""


class StatusCommand(RecordCommand):
    """`status`: one record with its story, or a table of the recent ones."""

    statuses: list[str]

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_option(parser)
        parser.add_argument("id", nargs="?", help=f"a {self.noun} id")
        parser.add_argument("--env", help="only this environment")
        parser.add_argument("--status", choices=self.statuses, help="only this status")
        parser.add_argument("--limit", type=int, default=20,
                            help=f"rows (default 20, at most {MAX_LIMIT})")

    def run(self, options: dict[str, Any]) -> None:
        # Your teams' records only (a superuser's: every team's), as the API lists them.
        user = acting_user(options)
        if options["id"]:
            document = self.document(self.find(options["id"], user))
            if options["json"]:
                self.out_json(document)
            else:
                self.show(document)
            return
        if not 1 <= options["limit"] <= MAX_LIMIT:
            raise CommandError(f"--limit: from 1 to {MAX_LIMIT}")
        self.table(options, user)

    @abstractmethod
    def show(self, document: dict[str, Any]) -> None:
        """Print one record (its `document`): its fields, its parts, its events."""

    def show_events(self, document: dict[str, Any]) -> None:
        """The record's story, oldest first, as `krp status` prints every record's."""
        self.out("events:")
        for event in document["events"]:
            self.out(f"  {event['created_at']} {event['from_status'] or '-'} -> "
                     f"{event['to_status']} ({event['actor']}) {event['message']}")

    @abstractmethod
    def table(self, options: dict[str, Any], user) -> None:
        """Print up to --limit of the user's records, newest first."""


class TransitionCommand(RecordCommand):
    """Approve, cancel, retry (or delete) one record: its service, acting as the user."""

    service: Callable[..., Any]
    verb = ""
    runs_job = True  # in eager mode, the jobs run in this process when the change commits
    approving = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help=f"the {self.noun}'s id")
        add_user_option(parser)

    def run(self, options: dict[str, Any]) -> None:
        user = acting_user(options)
        record = self.find(options["id"], user)  # another team's is "not found"
        if self.runs_job:
            runs_here(record.environment, approving=self.approving)
        try:
            moved = self.service(**{f"{self.noun}_id": record.pk}, user=user)
        except KrpError as exc:
            raise self.refused(exc) from None
        # In eager mode its jobs ran when the change committed, before the service
        # returned: what the service returned is already out of date.
        record = self.find(str(moved.pk), user)
        if options["json"]:
            self.out_json(self.document(record))
            return
        since = "" if record.status == moved.status else ", and it has run since"
        self.out(f"{self.noun} {record.pk} {self.verb}{since}: now {outcome(record)}")
        self.print_parts(record)

    def refused(self, exc: KrpError) -> CommandError:
        """The service's refusal as the operator reads it."""
        return refusal(exc)

    def print_parts(self, record) -> None:  # noqa: B027 - optional hook
        """What the record is made of, after the line saying what became of it."""
