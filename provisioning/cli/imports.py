"""krp import: bring many existing resources under KRP at once (or plan it, with --plan)."""

from __future__ import annotations

import time
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from dependency_injector.wiring import Provide, inject
from django.core.management.base import CommandError, CommandParser

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.cli import Subcommand
from provisioning.cli.records import acting_user, add_user_option, refusal
from provisioning.errors import InvalidRequest, KrpError
from provisioning.models import TERMINAL_STATUSES, RequestAction, RequestStatus, ResourceRequest
from provisioning.resources import REGISTRY
from provisioning.services import request_submit
from provisioning.services.dry_runs import request_dry_run
from provisioning.services.imports import CANDIDATES_TASK


class Import(Subcommand):
    name = "import"
    help = "import existing resources of one type into KRP (or --plan what it would do)"
    description = (
        "Bring resources made outside KRP under management, each by an ordinary import "
        "request (approval where the environment requires it): named ones (--names, names "
        "or ARNs), every one of the type that carries no KRP tag (--all-untagged), or those "
        "with a tag (--tag KEY=VALUE). Each gets a KRP name from its own (without "
        "<prefix>-<environment>-). Prints progress and a summary; exits non-zero if any "
        "failed. Running it again imports nothing new: what KRP manages is left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_option(parser)
        parser.add_argument("--env", required=True, help="environment, e.g. alpha")
        parser.add_argument("--type", required=True, choices=sorted(REGISTRY),
                            help="resource type")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--names", help="comma-separated names in AWS, or ARNs")
        which.add_argument("--all-untagged", action="store_true",
                           help="every resource of the type without a krp: tag")
        which.add_argument("--tag", metavar="KEY=VALUE",
                           help="those without a krp: tag that carry this tag")
        parser.add_argument("--team", help="team (needed if you are in several)")
        parser.add_argument("--ttl", help="how long each imported resource lives once "
                            "imported, e.g. 7d (required where the environment requires one)")
        parser.add_argument("--plan", action="store_true",
                            help="only plan each import; records nothing")
        parser.add_argument("--timeout", type=float, default=900.0,
                            help="seconds to wait for the listing and the imports")

    def run(self, options: dict[str, Any]) -> None:
        user = acting_user(options)
        kind = REGISTRY[options["type"]]
        if options["tag"] is not None and "=" not in options["tag"]:
            raise CommandError(f"--tag {options['tag']!r}: use KEY=VALUE")
        candidates = (
            [name.strip() for name in options["names"].split(",") if name.strip()]
            if options["names"] else self.listed(options)
        )
        if not candidates:
            self.out(f"{options['env']}: no {kind.name} to import")
            return
        outcomes: dict[str, str] = {}
        recorded: dict[str, ResourceRequest] = {}
        for number, given in enumerate(candidates, 1):
            self.progress(f"[{number}/{len(candidates)}] {given}")
            try:
                physical = kind.import_name(given, prefix="", environment=options["env"])
                name = kind.krp_name_for(physical, prefix=self.prefix(),
                                         environment=options["env"])
                fields = {"user": user, "environment": options["env"],
                          "resource_type": kind.name, "name": name,
                          "action": RequestAction.IMPORT, "physical_name": physical,
                          "team": options["team"], "ttl": options["ttl"]}
                if options["plan"]:
                    plan = request_dry_run(**fields)["plan"]
                    self.out("\n".join(plan["lines"]))
                    outcomes[given] = "failed" if plan.get("error") else "planned"
                    continue
                recorded[given], _ = request_submit(**fields)
            except InvalidRequest as exc:
                outcomes[given] = ("already managed" if exc.code == "already_managed"
                                   else "failed")
                self.progress(f"  {refusal(exc)}")
            except KrpError as exc:
                outcomes[given] = "failed"
                self.progress(f"  {refusal(exc)}")
        outcomes.update(self.finished(recorded, options["timeout"]))
        self.summarise(outcomes, options)

    @inject
    def prefix(self, settings: KrpSettings = Provide[CoreContainer.settings]) -> str:
        return settings.name_prefix

    @inject
    def listed(self, options: dict[str, Any],
               settings: KrpSettings = Provide[CoreContainer.settings],
               celery_app=Provide[CoreContainer.celery_app]) -> list[str]:
        """What a worker of the environment finds to import there."""
        try:
            queue = settings.environment(options["env"]).queue
        except KeyError:
            raise CommandError(f"--env: unknown environment {options['env']}") from None
        job = celery_app.signature(CANDIDATES_TASK, kwargs={
            "environment": options["env"], "resource_type": options["type"],
            "tag": options["tag"]}, queue=queue).apply_async()
        try:
            return job.get(timeout=options["timeout"])
        except CeleryTimeout:
            raise CommandError(f"no worker of {options['env']} listed its resources within "
                               f"{options['timeout']:.0f} s; is one running on queue "
                               f"{queue}?") from None
        except KrpError as exc:
            raise refusal(exc) from None

    def finished(self, recorded: dict[str, ResourceRequest],
                 timeout: float) -> dict[str, str]:
        """Wait for the import requests to end (in eager mode they already have)."""
        deadline = time.monotonic() + timeout
        outcomes: dict[str, str] = {}
        waiting = dict(recorded)
        while waiting:
            for given, request in list(waiting.items()):
                request.refresh_from_db()
                if request.status in TERMINAL_STATUSES:
                    outcomes[given] = ("imported" if request.status == RequestStatus.SUCCEEDED
                                       else "failed")
                    if request.status != RequestStatus.SUCCEEDED:
                        self.progress(f"  {given}: {request.status}: {request.error_message}")
                    del waiting[given]
                elif request.status == RequestStatus.PENDING_APPROVAL:
                    outcomes[given] = "waiting for approval"
                    del waiting[given]
            if waiting and time.monotonic() > deadline:
                outcomes.update({given: "still running" for given in waiting})
                break
            if waiting:
                time.sleep(0.5)
        return outcomes

    def summarise(self, outcomes: dict[str, str], options: dict[str, Any]) -> None:
        counts: dict[str, int] = {}
        for outcome in outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        if options["json"]:
            self.out_json({"outcomes": outcomes, "counts": counts})
        else:
            self.out(f"{options['env']} {options['type']}: " + ", ".join(
                f"{count} {outcome}" for outcome, count in sorted(counts.items())))
        failed = sorted(given for given, outcome in outcomes.items()
                        if outcome in ("failed", "still running"))
        if failed:
            raise CommandError(f"{len(failed)} not imported: {', '.join(failed)}")
