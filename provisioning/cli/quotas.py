"""krp quotas: the quotas of your teams, with what each team holds under them now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from provisioning import selectors
from provisioning.api.serializers import QuotaSerializer
from provisioning.cli import Subcommand
from provisioning.cli.records import acting_user, add_user_option
from provisioning.errors import KrpError


class Quotas(Subcommand):
    name = "quotas"
    help = "list quotas with their use (your teams'; every team's if you set quotas)"
    description = (
        "The quotas of your teams (every team's if you may change quotas), each with what "
        "the team holds under it now: live resources (those being created count) against "
        "max_live, requests in flight against max_in_flight. Operators set quotas in the "
        "admin. A blank environment or type is shown as `*` (any)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", help="only this team's")
        parser.add_argument("--env", help="only the quotas that cover this environment")
        parser.add_argument("--type", help="only the quotas that cover this resource type")
        add_user_option(parser)

    def run(self, options: dict[str, Any]) -> None:
        user = acting_user(options)
        filters = {key: options[option] for key, option in (
            ("team", "team"), ("environment", "env"), ("resource_type", "type"))
            if options[option]}
        try:
            rows = [dict(QuotaSerializer(quota).data)
                    for quota in selectors.quota_list(user=user, filters=filters)]
        except KrpError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        if options["json"]:
            self.out_json(rows)
            return
        if not rows:
            self.out("no quotas")
            return
        self.out(f"{'TEAM':<16} {'ENV':<12} {'TYPE':<16} {'LIVE':>10} {'IN FLIGHT':>10}")
        for row in rows:
            self.out(f"{row['team']:<16} {row['environment'] or '*':<12} "
                     f"{row['resource_type'] or '*':<16} "
                     f"{_of(row['live'], row['max_live']):>10} "
                     f"{_of(row['in_flight'], row['max_in_flight']):>10}")


def _of(used: int, maximum: int | None) -> str:
    return f"{used}/{'-' if maximum is None else maximum}"
