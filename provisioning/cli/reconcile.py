"""krp reconcile: compare the inventory with the cloud; fix drift on request."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from django.core.management.base import CommandError, CommandParser

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.cli import Subcommand
from provisioning.models import FindingKind, ReconcileRun, ResourceStatus
from provisioning.services.reconcile import reconcile


class Reconcile(Subcommand):
    name = "reconcile"
    help = "compare the inventory with the cloud: missing, drifted and orphaned resources"
    description = (
        "For each environment (or --env), describe every resource the inventory holds and "
        "list what is tagged krp:managed-by=krp in the account. Reports resources that are "
        "gone (missing), that differ from their spec or tags (drifted) and that the "
        "inventory does not know (orphans), and looks up by name what failed creates recorded "
        "they may have left (left_behind). --fix re-applies the spec to drifted resources, "
        "marks missing ones and deletes what was left behind; orphans are deleted only with "
        "--delete-orphans. Existence and tags come from the listings; settings are described "
        "in full for a rotating share each run (every resource within "
        "KRP_RECONCILE_DEEP_WINDOW_HOURS), and for all with --deep. A resource that cannot "
        "be checked is an error finding and the run goes on. Progress goes to stderr. "
        "Exits non-zero while anything found is left as it was."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--env", action="append", help="only this environment (repeatable)")
        parser.add_argument("--fix", action="store_true",
                            help="re-apply the spec to drifted resources, mark missing ones, "
                                 "delete what failed creates left behind")
        parser.add_argument("--delete-orphans", action="store_true",
                            help="delete resources tagged as KRP's that the inventory lacks")
        parser.add_argument("--deep", action="store_true",
                            help="describe every resource's settings in full, not only this "
                                 "run's share of the rotation")

    @inject
    def run(self, options: dict[str, Any],
            settings: KrpSettings = Provide[CoreContainer.settings]) -> None:
        names = options["env"] or list(settings.environment_names)
        unknown = sorted(set(names) - set(settings.environment_names))
        if unknown:
            raise CommandError(f"--env: unknown environment {', '.join(unknown)}")
        runs = [
            reconcile(environment=name, fix=options["fix"],
                      delete_orphans=options["delete_orphans"], deep=options["deep"],
                      triggered_by="krp reconcile",
                      progress=self.progress)
            for name in names
        ]
        if options["json"]:
            self.out_json([_document(run) for run in runs])
        else:
            for run in runs:
                self._report(run)
        failed = [run for run in runs if run.status == ReconcileRun.Status.FAILED]
        left = sum(1 for run in runs for f in run.findings.all()
                   if not f.resolved and f.kind != FindingKind.ERROR)
        errors = sum(run.findings.filter(kind=FindingKind.ERROR).count() for run in runs)
        if failed:
            raise CommandError("reconcile failed for " + ", ".join(
                f"{run.environment} ({run.error})" for run in failed))
        if errors:
            raise CommandError(f"{errors} resource(s) could not be checked or fixed (error "
                               "findings); the next run tries again")
        if left:
            raise CommandError(f"{left} finding(s) left as they are; --fix / "
                               "--delete-orphans act on them")

    def _report(self, run: ReconcileRun) -> None:
        findings = list(run.findings.select_related("resource"))
        calls = ", ".join(f"{service} {count}" for service, count in run.aws_calls.items())
        self.out(f"{run.environment}: {run.status}, {run.checked} resource(s) checked, "
                 f"{len(findings)} finding(s); {run.deep_checked} described in full, "
                 f"{run.duration_seconds or 0:.1f} s, "
                 f"{sum(run.aws_calls.values())} AWS call(s){f' ({calls})' if calls else ''}")
        for finding in findings:
            self.out(f"  {finding.kind:<8} {finding.resource_type:<15} "
                     f"{finding.arn or finding.details.get('physical_name', '')}")
            stack = finding.details.get("stack")
            if stack:
                self.out(f"           in stack {stack['name']} ({stack['id']}), "
                         f"member {finding.details.get('member')}")
            if finding.kind == FindingKind.ERROR:
                self.out(f"           could not check it ({finding.details.get('during')}): "
                         f"{finding.details.get('error')}")
            if finding.kind == "left_behind":
                self.out(f"           {finding.details['physical_name']}, left in the cloud by "
                         f"failed request {finding.details['request']}")
            for key, value in finding.details.items():
                if isinstance(value, dict) and "expected" in value:
                    self.out(f"           {key}: expected {value['expected']!r}, "
                             f"found {value['actual']!r}")
            if finding.action_taken:
                self.out(f"           -> {finding.action_taken}")
            elif finding.details.get("not_fixed"):
                self.out(f"           -> not fixed: {finding.details['not_fixed']}")
            if finding.kind == "orphan" and finding.details.get("import") and (
                    not finding.action_taken):
                self.out(f"           keep it under KRP: {finding.details['import']}")
            if finding.kind == "missing" and finding.resource_id:
                self.out(f"           resource {finding.resource_id}: "
                         + ("" if finding.resource.status == ResourceStatus.MISSING
                            else "`--fix` marks it missing; then ")
                         + "create it again (a create of the same name) or `krp forget` it")


def _document(run: ReconcileRun) -> dict[str, Any]:
    return {
        "id": str(run.pk), "environment": run.environment, "status": run.status,
        "checked": run.checked, "deep_checked": run.deep_checked,
        "duration_seconds": run.duration_seconds, "aws_calls": run.aws_calls,
        "finding_count": run.finding_count, "error": run.error or None,
        "findings": [
            {"kind": f.kind, "resource_type": f.resource_type, "arn": f.arn,
             "resource": str(f.resource_id) if f.resource_id else None,
             "details": f.details, "action_taken": f.action_taken or None}
            for f in run.findings.all()
        ],
    }
