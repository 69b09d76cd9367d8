"""krp forget: stop tracking a resource reconcile found missing from the cloud."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from provisioning.api.serializers import ResourceSerializer
from provisioning.cli import Subcommand
from provisioning.cli.records import acting_user, add_user_option
from provisioning.errors import KrpError
from provisioning.services import resource_forget


class Forget(Subcommand):
    name = "forget"
    help = "forget a resource reconcile found missing (needs the forget_resource permission)"
    description = (
        "Stop tracking a resource that reconcile found missing from the cloud (gone behind "
        "KRP's back): it becomes `forgotten`, reconcile no longer reports it, and its name "
        "may be created again. The other way out is to create it again (`krp submit` a "
        "create of the same name), which makes it under the same inventory row. Refused "
        "for a resource that is not missing, has a request in flight, or that another KRP "
        "resource refers to."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help="the resource's id (`krp reconcile` prints it)")
        add_user_option(parser)

    def run(self, options: dict[str, Any]) -> None:
        user = acting_user(options)
        try:
            resource = resource_forget(resource_id=options["id"], user=user)
        except KrpError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        if options["json"]:
            self.out_json(dict(ResourceSerializer(resource).data))
        else:
            self.out(f"resource {resource.pk} ({resource.resource_type} "
                     f"{resource.environment}/{resource.name}) forgotten")
