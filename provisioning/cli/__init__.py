"""`manage.py krp` subcommands: one module each, listed in SUBCOMMANDS.

Each subcommand is a Subcommand: it declares its arguments and runs with the parsed
options, writing through the Django command's stdout/stderr. Failures raise CommandError
(exit status 1 with the message); `--json` gives scripts a machine-readable answer.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Subcommand(ABC):
    name: str
    help: str
    description: str = ""
    json_option = True

    def __init__(self, command: BaseCommand):
        self.command = command

    def add_arguments(self, parser: CommandParser) -> None:  # noqa: B027 - optional hook
        """Declare this subcommand's own arguments (none by default)."""

    @abstractmethod
    def run(self, options: dict[str, Any]) -> None:
        """Carry the subcommand out with the parsed options."""

    def out(self, text: str = "") -> None:
        self.command.stdout.write(text)
        self.command.stdout.flush()

    def progress(self, text: str) -> None:
        """Progress of a long operation, on stderr so --json output stays clean."""
        self.command.stderr.write(text)
        self.command.stderr.flush()

    def out_json(self, document: Any) -> None:
        self.out(json.dumps(document, indent=2, sort_keys=True, default=str))


def add_subcommands(command: BaseCommand, parser: CommandParser,
                    subcommands: Sequence[type[Subcommand]], *, dest: str,
                    metavar: str) -> None:
    """One subparser per subcommand under `parser` (`krp <subcommand>`, and `krp stack
    <action>` a level down), each refusing bad arguments as its parent does: a
    CommandError in-process, an exit with usage from a shell."""
    subparsers = parser.add_subparsers(dest=dest, required=True, metavar=metavar,
                                       parser_class=type(parser))
    for subcommand in subcommands:
        sub = subparsers.add_parser(
            subcommand.name, help=subcommand.help,
            description=subcommand.description or subcommand.help,
            called_from_command_line=getattr(parser, "called_from_command_line", None),
        )
        if subcommand.json_option:
            sub.add_argument("--json", action="store_true",
                             help="print a JSON document instead of text")
        subcommand(command).add_arguments(sub)


def chosen(subcommands: Sequence[type[Subcommand]], name: str) -> type[Subcommand]:
    return next(s for s in subcommands if s.name == name)
