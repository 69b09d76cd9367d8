"""krp extend: give a resource of your team a new expiry, within its environment's bound."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from provisioning import selectors
from provisioning.api.serializers import ResourceSerializer
from provisioning.cli import Subcommand
from provisioning.cli.records import acting_user, add_user_option, refusal
from provisioning.cli.requests import when
from provisioning.errors import KrpError
from provisioning.models import GONE_STATUSES
from provisioning.services.expiry import resource_extend


class Extend(Subcommand):
    name = "extend"
    help = "give a resource a new expiry (--ttl from now, or --expires-at)"
    description = (
        "Set when a resource of your team expires: --ttl counts from now, --expires-at names "
        "the moment; either within its environment's max_ttl from now. A resource without an "
        "expiry gets one. The warnings already sent are reset. When it expires, the sweep "
        "files an ordinary delete request for it (as krp-expiry)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_option(parser)
        parser.add_argument("--env", required=True, help="environment, e.g. alpha")
        parser.add_argument("--type", required=True, help="resource type, e.g. s3_bucket")
        parser.add_argument("name", help="the resource's name in KRP")
        lifetime = parser.add_mutually_exclusive_group(required=True)
        lifetime.add_argument("--ttl", help="how long from now, e.g. 3d, 12h, 1d12h")
        lifetime.add_argument("--expires-at", help="ISO 8601 time with a zone")

    def run(self, options: dict[str, Any]) -> None:
        user = acting_user(options)
        # Your teams' resources only, as the API's: another team's is "not found".
        named = selectors.resource_list(user=user).filter(
            environment=options["env"], resource_type=options["type"], name=options["name"])
        # The live one; else the latest gone one, so the refusal says it is gone.
        resource = (named.exclude(status__in=sorted(GONE_STATUSES)).first()
                    or named.order_by("-created_at").first())
        if resource is None:
            raise CommandError(f"no resource {options['type']} {options['env']}/"
                               f"{options['name']} among your teams'")
        try:
            extended = resource_extend(
                resource_id=resource.pk, user=user, ttl=options["ttl"],
                expires_at=when(options["expires_at"], "--expires-at"))
        except KrpError as exc:
            raise refusal(exc) from None
        if options["json"]:
            self.out_json(dict(ResourceSerializer(extended).data))
            return
        self.out(f"resource {extended.pk} ({extended}) now expires at "
                 f"{extended.expires_at.isoformat()}")
