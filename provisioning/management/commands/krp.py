"""`manage.py krp <subcommand>`: the operator's command line.

Each subcommand lives in provisioning/cli/ and has its own --help.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from provisioning.cli import Subcommand, add_subcommands, chosen
from provisioning.cli.check import Check
from provisioning.cli.extend import Extend
from provisioning.cli.forget import Forget
from provisioning.cli.imports import Import
from provisioning.cli.quotas import Quotas
from provisioning.cli.reconcile import Reconcile
from provisioning.cli.requests import Approve, Cancel, Retry, Status, Submit
from provisioning.cli.resources import Resources
from provisioning.cli.sandbox import Sandbox
from provisioning.cli.stacks import StackCommands
from provisioning.cli.sweep import Sweep
from provisioning.cli.users import CreateUser

SUBCOMMANDS: list[type[Subcommand]] = [
    Submit, Status, Approve, Cancel, Retry, StackCommands, Import, Check, Reconcile, Sweep,
    Forget, Resources, Extend, Quotas, Sandbox, CreateUser,
]


class Command(BaseCommand):
    help = "KRP operator commands; `manage.py krp <subcommand> --help` for each."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        add_subcommands(self, parser, SUBCOMMANDS, dest="subcommand", metavar="subcommand")

    def handle(self, *args, subcommand: str, **options) -> None:
        chosen(SUBCOMMANDS, subcommand)(self).run(options)
