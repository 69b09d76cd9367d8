"""krp check: is this host set up to change what it should, where it should?"""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from django.core.management.base import CommandError

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.cli import Subcommand
from provisioning.cloud import IdentityGuard
from provisioning.errors import KrpError
from provisioning.health import (
    broker_status,
    call_budget_status,
    database_status,
    sweep_status,
)


class Check(Subcommand):
    name = "check"
    help = ("settings fingerprint, database, broker, the sweep, and each environment's AWS "
            "account")
    description = (
        "Print the settings fingerprint (compare it between a web host and a worker host), "
        "whether the database and the broker answer, when the sweep last ran, and whether "
        "each environment's credentials resolve (STS GetCallerIdentity) to its configured "
        "account. Exits non-zero on any failure or mismatch, and in broker mode when the "
        "sweep has not run for three of its intervals (no worker consumes the control "
        "queue, or beat is not running)."
    )

    @inject
    def run(
        self,
        options: dict[str, Any],
        settings: KrpSettings = Provide[CoreContainer.settings],
        guard: IdentityGuard = Provide[CoreContainer.identity_guard],
    ) -> None:
        report: dict[str, Any] = {
            "fingerprint": settings.fingerprint,
            "task_mode": settings.task_mode,
            "database": database_status(),
            "broker": broker_status(),
            "sweep": sweep_status(),
            "call_budget": call_budget_status(),
            "environments": {},
        }
        budgets = report["call_budget"]["environments"]
        healthy = (report["database"] == "ok" and not report["broker"].startswith("down")
                   and report["sweep"]["ok"])
        for env in settings.environments:
            self.progress(f"checking {env.name} ...")
            entry: dict[str, Any] = {"account_id": env.account_id, "region": env.region,
                                     "queue": env.queue,
                                     "calls_per_second": budgets[env.name]["calls_per_second"]}
            try:
                identity = guard.confirm(env.name)
                entry.update(status="ok", arn=identity["arn"])
            except KrpError as exc:
                entry.update(status=f"{exc.code}: {exc.message}")
                healthy = False
            report["environments"][env.name] = entry
        if options["json"]:
            self.out_json(report)
        else:
            self.out(f"settings fingerprint: {report['fingerprint']} "
                     f"(task mode {report['task_mode']})")
            self.out(f"database: {report['database']}")
            self.out(f"broker: {report['broker']}")
            sweep = report["sweep"]
            self.out(f"sweep: {sweep['status']} (last ran "
                     f"{sweep['last_run'] or 'never'}, every {sweep['interval_seconds']} s)")
            budget = report["call_budget"]
            self.out(f"AWS call budget: {budget['status']}")
            if budget["warning"]:
                self.out(f"warning: {budget['warning']}")
            for name, entry in report["environments"].items():
                self.out(f"environment {name} (account {entry['account_id']}, "
                         f"{entry['region']}, queue {entry['queue']}): {entry['status']}")
                self.out(f"  AWS call budget {entry['calls_per_second']} calls/s, "
                         f"{budget['environments'][name]['kept']}")
        if not healthy:
            raise CommandError("check failed: see above")
