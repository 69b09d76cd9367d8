"""`manage.py krp <subcommand>`: the operator's command line.

Each subcommand lives in provisioning/cli/ and has its own --help.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from provisioning.cli import Subcommand
from provisioning.cli.check import Check
from provisioning.cli.forget import Forget
from provisioning.cli.reconcile import Reconcile
from provisioning.cli.requests import Approve, Cancel, Retry, Status, Submit
from provisioning.cli.sandbox import Sandbox
from provisioning.cli.sweep import Sweep
from provisioning.cli.users import CreateUser

SUBCOMMANDS: list[type[Subcommand]] = [
    Submit, Status, Approve, Cancel, Retry, Check, Reconcile, Sweep, Forget, Sandbox,
    CreateUser,
]


class Command(BaseCommand):
    help = "KRP operator commands; `manage.py krp <subcommand> --help` for each."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar="subcommand",
                                           parser_class=type(parser))
        for subcommand in SUBCOMMANDS:
            sub = subparsers.add_parser(
                subcommand.name, help=subcommand.help,
                description=subcommand.description or subcommand.help,
                called_from_command_line=getattr(parser, "called_from_command_line", None),
            )
            if subcommand.json_option:
                sub.add_argument("--json", action="store_true",
                                 help="print a JSON document instead of text")
            subcommand(self).add_arguments(sub)

    def handle(self, *args, subcommand: str, **options) -> None:
        chosen = next(s for s in SUBCOMMANDS if s.name == subcommand)
        chosen(self).run(options)
