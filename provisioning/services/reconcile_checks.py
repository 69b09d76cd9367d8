"""Reconcile's check of an environment's inventory, sized for thousands of resources.

Existence and tags come from the listings reconcile has already made (the Tagging API,
100 resources a call, and each other type's own listing): a resource listed with the tags
KRP recorded is verified without a call of its own. A deep check (describe(): every
setting of the spec, a few calls a resource) goes to

- what the listing cannot vouch for: a resource absent from it (a listing can come up
  short, so only a describe that finds nothing makes it missing), one listed with other
  tags, and one already drifted or missing (a listing that gives no tags, IAM's, vouches
  for existence only: a role's tags are compared in its deep check);
- a rotating share of the rest, oldest deep check first, sized so that every resource is
  deep-checked within KRP_RECONCILE_DEEP_WINDOW_HOURS when a run comes every
  KRP_RECONCILE_INTERVAL_SECONDS (all of them with `deep`, or when no run is scheduled).

Describes run in KRP_RECONCILE_CONCURRENCY threads through the container's clients (boto3
clients are thread-safe; every call still takes its token from the environment's shared
call budget). The threads only call AWS: everything the database sees happens in the
calling thread, so a fix still checks for a request in flight just before it writes. One
resource's failure (its describe or its fix) is recorded against it and the run goes on.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F
from django.utils import timezone

from containers.settings import KrpSettings
from provisioning.cloud import CloudClients, classify_failure
from provisioning.errors import KrpError
from provisioning.models import (
    Finding,
    FindingKind,
    ReconcileRun,
    RequestStatus,
    Resource,
    ResourceRequest,
    ResourceStatus,
)
from provisioning.resources import REGISTRY
from provisioning.resources.base import TEAM, Observed, ProvisionContext

CHECKED = [ResourceStatus.ACTIVE, ResourceStatus.DRIFTED, ResourceStatus.MISSING]
# Even a small inventory deep-checks this many a run (all of it, when it is smaller).
DEEP_MINIMUM = 10
# A progress line at least every this many deep checks, or this many seconds.
PROGRESS_EVERY = 500
PROGRESS_SECONDS = 5.0

Progress = Callable[[str], None]
# Why a fix must not write now (a request in flight), or "" (see reconcile._in_flight).
InFlight = Callable[[str, str, list[str]], str]


def deep_share(total: int, settings: KrpSettings) -> int:
    """How many resources a run deep-checks so that each is deep-checked within the window.

    A resource waits at most ceil(total / share) runs for its turn, so the share divides
    the inventory by the number of runs that fit in the window. With no periodic run
    (interval 0) nothing spreads the work: every run checks everything.
    """
    if settings.reconcile_interval_seconds == 0:
        return total
    window = settings.reconcile_deep_window_hours * 3600
    runs_per_window = max(1, window // settings.reconcile_interval_seconds)
    return min(total, max(DEEP_MINIMUM, math.ceil(total / runs_per_window)))


@dataclass
class Tally:
    """What the inventory check found, for the run's record and the progress lines."""

    checked: int = 0
    deep_checked: int = 0
    findings: int = 0
    verified: list[Any] = field(default_factory=list)  # listed as recorded: no call needed
    clean: list[Any] = field(default_factory=list)  # deep-checked, as recorded


def check_inventory(*, run: ReconcileRun, settings: KrpSettings, clients: CloudClients,
                    listed: dict[str, dict[str, str] | None], fix: bool, deep: bool,
                    in_flight: InFlight, say: Progress) -> set[str]:
    """Check each live inventory resource of the run's environment against the listing,
    deep-checking those that need it and the rotation's share; record the findings on
    `run` (and its counts). Returns every ARN KRP knows there."""
    environment = run.environment
    resources = list(
        Resource.objects.filter(environment=environment, status__in=CHECKED)
        .select_related("team")
        .order_by(F("last_deep_checked_at").asc(nulls_first=True), "created_at", "pk")
    )
    busy = set(
        ResourceRequest.objects.filter(
            environment=environment,
            status__in=[RequestStatus.RUNNING, RequestStatus.QUEUED],
        ).values_list("resource_type", "name")
    )
    known: set[str] = set()
    for resource in resources:
        known.update(arns_of(resource))
    # A request is changing these right now: its outcome will say.
    resources = [r for r in resources if (r.resource_type, r.name) not in busy]
    tally = Tally(checked=len(resources))
    share = len(resources) if deep else deep_share(len(resources), settings)
    to_describe: list[Resource] = []
    for position, resource in enumerate(resources):
        if position < share or _needs_describe(resource, listed):
            to_describe.append(resource)
        else:
            tally.verified.append(resource.pk)
    say(f"{environment}: {len(resources)} resource(s) checked against the listing; "
        f"describing {len(to_describe)} in full")
    references = {(r.resource_type, r.name): r.arn for r in resources}
    contexts = {r.pk: _context(r, settings, clients, references) for r in to_describe}
    started = last_said = time.monotonic()
    for done, (resource, observed, error) in enumerate(
            _describe_all(to_describe, contexts, settings.reconcile_concurrency), start=1):
        try:
            _record(run, resource, contexts[resource.pk], observed, error, fix, in_flight,
                    tally, say)
        except Exception as exc:  # noqa: BLE001 - this resource's; the run goes on
            _finding(run, tally, kind=FindingKind.ERROR, resource=resource,
                     details={"error": classify_failure(exc).message, "during": "compare"})
        now = time.monotonic()
        if done % PROGRESS_EVERY == 0 or now - last_said >= PROGRESS_SECONDS:
            last_said = now
            say(f"{environment}: described {done}/{len(to_describe)}, {tally.findings} "
                f"finding(s) so far, {now - started:.0f} s")
    now = timezone.now()
    Resource.objects.filter(pk__in=tally.verified, status__in=CHECKED).update(
        last_verified_at=now)
    Resource.objects.filter(pk__in=tally.clean, status__in=CHECKED).update(
        status=ResourceStatus.ACTIVE, last_verified_at=now, last_deep_checked_at=now)
    run.checked, run.deep_checked = tally.checked, tally.deep_checked
    return known


def _needs_describe(resource: Resource, listed: dict[str, dict[str, str] | None]) -> bool:
    """Whether the listing leaves the resource in doubt: absent (gone, or a short listing),
    listed with other tags than KRP recorded, or already found wrong. Listed without tags
    (an IAM role) is not doubt: its tags wait for its turn in the rotation."""
    if resource.status != ResourceStatus.ACTIVE or resource.arn not in listed:
        return True
    tags = listed[resource.arn]
    return tags is not None and tags != resource.tags


def _context(resource: Resource, settings: KrpSettings, clients: CloudClients,
             references: dict[tuple[str, str], str]) -> ProvisionContext:
    return ProvisionContext.build(
        settings=settings, clients=clients, environment=resource.environment,
        physical_name=resource.physical_name,
        creating_request_id=str(resource.created_by_request_id),
        # The tags as KRP recorded them, its own included: a fix puts back exactly
        # those, even for a team renamed since.
        team=resource.tags.get(TEAM, resource.team.name), user_tags=resource.tags,
        references=references,
    )


def _describe_all(resources: list[Resource], contexts: dict[Any, ProvisionContext],
                  concurrency: int
                  ) -> Iterator[tuple[Resource, Observed | None, KrpError | None]]:
    """(resource, what describe() saw, or the error it met) for each, as they finish."""

    def describe(resource: Resource) -> Observed | None:
        return REGISTRY[resource.resource_type].describe(contexts[resource.pk])

    if not resources:
        return
    with ThreadPoolExecutor(max_workers=concurrency,
                            thread_name_prefix="krp-reconcile") as pool:
        # Each in a copy of this context, so the run's CallTally counts the threads' calls.
        futures: dict[Future, Resource] = {
            pool.submit(contextvars.copy_context().run, describe, resource): resource
            for resource in resources
        }
        try:
            for future in as_completed(futures):
                resource = futures[future]
                try:
                    yield resource, future.result(), None
                except Exception as exc:  # noqa: BLE001 - this resource's, recorded
                    yield resource, None, classify_failure(exc)
        finally:
            for future in futures:
                future.cancel()


def _record(run: ReconcileRun, resource: Resource, ctx: ProvisionContext,
            observed: Observed | None, error: KrpError | None, fix: bool,
            in_flight: InFlight, tally: Tally, say: Progress) -> None:
    """Compare one described resource with the inventory; record (and fix) what differs."""
    if error is not None:
        _finding(run, tally, kind=FindingKind.ERROR, resource=resource,
                 details={"error": error.message, "code": error.code, "during": "describe"})
        return
    tally.deep_checked += 1
    kind = REGISTRY[resource.resource_type]
    checked_now = Resource.objects.filter(pk=resource.pk, status__in=CHECKED)
    if observed is None:
        finding = Finding(run=run, kind=FindingKind.MISSING, resource=resource,
                          resource_type=resource.resource_type, arn=resource.arn,
                          details={"physical_name": resource.physical_name})
        if fix:
            now = timezone.now()
            checked_now.update(status=ResourceStatus.MISSING, last_verified_at=now,
                               last_deep_checked_at=now)
            finding.action_taken = "marked missing in the inventory"
        else:
            checked_now.update(last_deep_checked_at=timezone.now())
        _save(finding, tally)
        return
    differences = differences_of(kind.expected_settings(kind.parse_spec(resource.spec)),
                                 observed.settings, resource.tags, observed.tags)
    if not differences:
        tally.clean.append(resource.pk)
        return
    finding = Finding(run=run, kind=FindingKind.DRIFTED, resource=resource,
                      resource_type=resource.resource_type, arn=resource.arn,
                      details=differences)
    if fix:
        say(f"{run.environment}: fixing {resource.resource_type} {resource.name}")
        try:
            # Something else may now stand under that name: never adopt it by fixing.
            ctx.claim(observed.tags, resource.resource_type)
            busy_now = in_flight(run.environment, resource.resource_type, [resource.name])
            if busy_now:
                finding.details["not_fixed"] = busy_now
            else:
                kind.update(ctx, kind.parse_spec(resource.spec))
                now = timezone.now()
                checked_now.update(status=ResourceStatus.ACTIVE, last_verified_at=now,
                                   last_deep_checked_at=now)
                finding.action_taken = "re-applied the spec and tags"
        except Exception as exc:  # noqa: BLE001 - this resource's fix; the run goes on
            finding.details["not_fixed"] = classify_failure(exc).message
    if not finding.action_taken:
        checked_now.update(status=ResourceStatus.DRIFTED, last_deep_checked_at=timezone.now())
    _save(finding, tally)


def _finding(run: ReconcileRun, tally: Tally, *, kind: str, resource: Resource,
             details: dict[str, Any]) -> None:
    _save(Finding(run=run, kind=kind, resource=resource, resource_type=resource.resource_type,
                  arn=resource.arn, details=details), tally)


def _save(finding: Finding, tally: Tally) -> None:
    finding.details.update(stack_membership(finding.resource.created_by_request_id))
    finding.save()
    tally.findings += 1


def stack_membership(request_id: Any) -> dict[str, Any]:
    """The stack and member whose request made what a finding is about, as the finding's
    details carry them ({"stack": {"name", "id"}, "member": key}); nothing for a resource
    asked for on its own. Looked up per finding, not for the whole inventory: findings
    are few, and the operator deciding on one needs to know a stack holds it (deleting it
    alone would break the members that refer to it)."""
    made_by = (ResourceRequest.objects.filter(pk=request_id, stack__isnull=False)
               .values("stack_id", "stack__name", "stack_member").first())
    if made_by is None:
        return {}
    return {"stack": {"name": made_by["stack__name"], "id": str(made_by["stack_id"])},
            "member": made_by["stack_member"]}


def arns_of(resource: Resource) -> set[str]:
    """The resource's ARN and those of the parts KRP made with it (an SQS queue's DLQ)."""
    return {resource.arn, *(v for k, v in resource.outputs.items()
                            if k.endswith("_arn") and isinstance(v, str))}


def differences_of(expected: dict[str, Any], actual: dict[str, Any],
                   expected_tags: dict[str, str], actual_tags: dict[str, str]
                   ) -> dict[str, Any]:
    differences: dict[str, Any] = {}
    for key in sorted(set(expected) | set(actual)):
        if key in expected and expected.get(key) != actual.get(key):
            differences[f"spec.{key}"] = {"expected": expected.get(key),
                                          "actual": actual.get(key)}
    for key in sorted(set(expected_tags) | set(actual_tags)):
        if expected_tags.get(key) != actual_tags.get(key):
            differences[f"tags.{key}"] = {"expected": expected_tags.get(key),
                                          "actual": actual_tags.get(key)}
    return differences
