"""Reconcile: compare an environment's inventory with what its AWS account holds.

Finds resources KRP believes live that are gone (missing), resources whose tags or
settings differ from what KRP applied (drifted), resources tagged
krp:managed-by=krp that the inventory does not know (orphans: listed through the Resource
Groups Tagging API, and by each type that API does not return in its own way), and what
failed creates recorded they may have left (left_behind: looked up by those physical
names, since an untagged bucket is invisible to any listing by tag).
A listing can come up short, so every inventory resource is described directly: absence
from a listing is never taken as proof that something is gone.

Without `fix` it only reports. With `fix` it re-applies the spec to drifted resources,
marks missing ones and deletes what failed creates left behind; an orphan is deleted only
with `delete_orphans`.

Reconcile holds no lease, so each fix checks again, just before it writes to the cloud,
that no request on the resource is in flight: one submitted after the run listed the
requests would otherwise race it (a spec re-applied over an update, a leftover deleted
under a new create). The fix is then left undone, and the finding says why (`not_fixed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dependency_injector.wiring import Provide, inject
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning import selectors
from provisioning.cloud import CloudClients, IdentityGuard, classify_failure
from provisioning.errors import KrpError
from provisioning.models import (
    GONE_STATUSES,
    Finding,
    FindingKind,
    ReconcileRun,
    RequestStatus,
    Resource,
    ResourceRequest,
    ResourceStatus,
)
from provisioning.resources import REGISTRY
from provisioning.resources.base import (
    MANAGED_BY,
    REQUEST_ID,
    TEAM,
    ProvisionContext,
    ResourceType,
    list_by_tag,
)

logger = logging.getLogger(__name__)

CHECKED = [ResourceStatus.ACTIVE, ResourceStatus.DRIFTED, ResourceStatus.MISSING]

Progress = Callable[[str], None]


@inject
def reconcile(
    *,
    environment: str,
    fix: bool = False,
    delete_orphans: bool = False,
    triggered_by: str = "operator",
    progress: Progress | None = None,
    settings: KrpSettings = Provide[CoreContainer.settings],
    clients: CloudClients = Provide[CoreContainer.cloud],
    guard: IdentityGuard = Provide[CoreContainer.identity_guard],
) -> ReconcileRun:
    """Compare one environment's inventory with its account; record and return the run."""
    say = progress or (lambda text: None)
    run = ReconcileRun.objects.create(environment=environment, fix=fix,
                                      delete_orphans=delete_orphans, triggered_by=triggered_by)
    try:
        env = settings.environment(environment)
        guard.confirm(environment)
        say(f"{environment}: listing resources tagged {MANAGED_BY}=krp")
        listed = _list_managed(clients, environment)
        known = _check_inventory(run, env.name, settings, clients, fix, say)
        known |= _check_left_behind(run, env.name, settings, clients, fix, say)
        _find_orphans(run, listed, known, settings, clients, delete_orphans, say)
    except Exception as exc:  # noqa: BLE001 - the run records why it stopped
        error = exc if isinstance(exc, KeyError) else classify_failure(exc)
        run.status, run.error = ReconcileRun.Status.FAILED, str(error)
        logger.warning("reconcile of %s failed: %s", environment, error)
    else:
        run.status = (ReconcileRun.Status.FINDINGS if run.findings.exists()
                      else ReconcileRun.Status.CLEAN)
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at", "checked"])
    return run


def _check_inventory(run: ReconcileRun, environment: str, settings: KrpSettings,
                     clients: CloudClients, fix: bool, say: Progress) -> set[str]:
    """Describe each live inventory resource; returns every ARN KRP knows there."""
    resources = list(
        Resource.objects.filter(environment=environment, status__in=CHECKED)
        .select_related("team").order_by("resource_type", "name")
    )
    busy = set(
        ResourceRequest.objects.filter(
            environment=environment,
            status__in=[RequestStatus.RUNNING, RequestStatus.QUEUED],
        ).values_list("resource_type", "name")
    )
    references = {(r.resource_type, r.name): r.arn for r in resources}
    known: set[str] = set()
    for index, resource in enumerate(resources, start=1):
        known.update(_arns_of(resource))
        say(f"{environment}: [{index}/{len(resources)}] {resource.resource_type} "
            f"{resource.name}")
        if (resource.resource_type, resource.name) in busy:
            continue  # a request is changing it right now: its outcome will say
        kind = REGISTRY[resource.resource_type]
        ctx = ProvisionContext.build(
            settings=settings, clients=clients, environment=environment,
            physical_name=resource.physical_name,
            creating_request_id=str(resource.created_by_request_id),
            # The tags as KRP recorded them, its own included: a fix puts back exactly
            # those, even for a team renamed since.
            team=resource.tags.get(TEAM, resource.team.name), user_tags=resource.tags,
            references=references,
        )
        observed = kind.describe(ctx)
        run.checked += 1
        now = timezone.now()
        if observed is None:
            finding = Finding(run=run, kind=FindingKind.MISSING, resource=resource,
                              resource_type=resource.resource_type, arn=resource.arn,
                              details={"physical_name": resource.physical_name})
            if fix:
                Resource.objects.filter(pk=resource.pk, status__in=CHECKED).update(
                    status=ResourceStatus.MISSING, last_verified_at=now)
                finding.action_taken = "marked missing in the inventory"
            finding.save()
            continue
        differences = _differences(kind.expected_settings(kind.parse_spec(resource.spec)),
                                   observed.settings, resource.tags, observed.tags)
        if not differences:
            Resource.objects.filter(pk=resource.pk, status__in=CHECKED).update(
                status=ResourceStatus.ACTIVE, last_verified_at=now)
            continue
        finding = Finding(run=run, kind=FindingKind.DRIFTED, resource=resource,
                          resource_type=resource.resource_type, arn=resource.arn,
                          details=differences)
        if fix:
            try:
                # Something else may now stand under that name: never adopt it by fixing.
                ctx.claim(observed.tags, resource.resource_type)
            except KrpError as exc:
                finding.details["not_fixed"] = exc.message
            else:
                busy_now = _in_flight(environment, resource.resource_type, [resource.name])
                if busy_now:
                    finding.details["not_fixed"] = busy_now
                else:
                    kind.update(ctx, kind.parse_spec(resource.spec))
                    Resource.objects.filter(pk=resource.pk, status__in=CHECKED).update(
                        status=ResourceStatus.ACTIVE, last_verified_at=timezone.now())
                    finding.action_taken = "re-applied the spec and tags"
        if not finding.action_taken:
            Resource.objects.filter(pk=resource.pk, status__in=CHECKED).update(
                status=ResourceStatus.DRIFTED)
        finding.save()
    return known


def _check_left_behind(run: ReconcileRun, environment: str, settings: KrpSettings,
                       clients: CloudClients, fix: bool, say: Progress) -> set[str]:
    """Look up each physical name a failed create recorded as left behind; report what
    is still there (and forget what is gone). With `fix`, delete it, unless the inventory
    holds it again or a request on it is in flight; delete() claims first, so one tagged
    by another request stays, and an untagged one goes only under the exact recorded name.
    Returns the ARNs found, which are not orphans as well."""
    live = set(Resource.objects.filter(environment=environment)
               .exclude(status__in=GONE_STATUSES)
               .values_list("resource_type", "physical_name"))
    found: set[str] = set()
    failed = (ResourceRequest.objects.filter(environment=environment,
                                             status=RequestStatus.FAILED)
              .exclude(left_behind=[]).select_related("team").order_by("created_at"))
    for request in failed:
        kind = REGISTRY[request.resource_type]
        remaining: list[str] = []
        for physical_name in request.left_behind:
            if (request.resource_type, physical_name) in live:
                continue  # made KRP's again by a later request: the inventory checks it
            say(f"{environment}: looking up {kind.name} {physical_name}, left by failed "
                f"request {request.pk}")
            ctx = ProvisionContext.build(
                settings=settings, clients=clients, environment=environment,
                physical_name=physical_name, creating_request_id=str(request.pk),
                team=request.team.name, user_tags=request.tags,
                # The request recorded this name before its create call: an untagged
                # resource of exactly this name is the one it made.
                earlier_attempt=True,
            )
            observed = kind.describe(ctx)
            if observed is None:
                continue  # gone: nothing left behind any more
            found.add(observed.arn)
            finding = Finding(run=run, kind=FindingKind.LEFT_BEHIND,
                              resource_type=kind.name, arn=observed.arn,
                              details={"physical_name": physical_name,
                                       "request": str(request.pk), "tags": observed.tags})
            busy_now = fix and _in_flight(environment, request.resource_type, [request.name])
            if busy_now:
                finding.details["not_fixed"] = busy_now
            elif fix:
                try:
                    kind.delete(ctx)
                except Exception as exc:  # noqa: BLE001 - recorded; the next run tries again
                    finding.details["not_fixed"] = classify_failure(exc).message
                else:
                    finding.action_taken = "deleted from the cloud"
            if not finding.action_taken:
                remaining.append(physical_name)
            finding.save()
        if remaining != request.left_behind:
            ResourceRequest.objects.filter(pk=request.pk).update(left_behind=remaining)
    return found


def _find_orphans(run: ReconcileRun, listed: dict[str, dict[str, str]], known: set[str],
                  settings: KrpSettings, clients: CloudClients, delete: bool,
                  say: Progress) -> None:
    # A create in flight has tagged its resource before the inventory row exists.
    in_flight = {
        str(pk) for pk in ResourceRequest.objects.filter(
            environment=run.environment, status__in=[RequestStatus.RUNNING,
                                                     RequestStatus.QUEUED],
        ).values_list("pk", flat=True)
    }
    for arn, tags in sorted(listed.items()):
        if arn in known or tags.get(REQUEST_ID) in in_flight:
            continue
        kind, physical_name = _identify(arn)
        finding = Finding(run=run, kind=FindingKind.ORPHAN,
                          resource_type=kind.name if kind else "",
                          arn=arn, details={"tags": tags, "physical_name": physical_name})
        # The request names that recorded this physical name: a create submitted since
        # the run listed the requests is one of them.
        busy_now = delete and kind and _in_flight(
            run.environment, kind.name,
            ResourceRequest.objects.filter(environment=run.environment, resource_type=kind.name,
                                           physical_name=physical_name)
            .values_list("name", flat=True).distinct())
        if busy_now:
            finding.details["not_fixed"] = busy_now
        elif delete and kind:
            say(f"{run.environment}: deleting orphan {arn}")
            ctx = ProvisionContext.build(
                settings=settings, clients=clients, environment=run.environment,
                physical_name=physical_name, creating_request_id=tags.get(REQUEST_ID, ""),
                team=tags.get(TEAM, ""), user_tags=tags,
            )
            kind.delete(ctx)
            finding.action_taken = "deleted from the cloud"
        finding.save()


def _in_flight(environment: str, resource_type: str, names) -> str:
    """Why a fix must not write now, if a request on the resource (by any of `names`) is
    in flight; empty if none is. Asked just before the write, not when the run began."""
    for name in names:
        request = selectors.request_in_flight(environment=environment,
                                              resource_type=resource_type, name=name)
        if request is not None:
            # Not the request's id: a finding may be seen by another team than its own.
            return (f"a request on this resource is in flight ({request.status}); "
                    "its outcome will say")
    return ""


def _list_managed(clients: CloudClients, environment: str) -> dict[str, dict[str, str]]:
    """ARN -> tags of everything KRP manages in the environment: one Tagging API listing
    for the types it returns (and KRP-tagged kinds KRP does not know), then each other
    registered type listed its own way."""
    listed = list_by_tag(clients, environment)
    for kind in REGISTRY.values():
        if not kind.listed_by_tag:
            listed.update(kind.list_managed(clients, environment))
    return listed


def _arns_of(resource: Resource) -> set[str]:
    """The resource's ARN and those of the parts KRP made with it (an SQS queue's DLQ)."""
    return {resource.arn, *(v for k, v in resource.outputs.items()
                            if k.endswith("_arn") and isinstance(v, str))}


def _identify(arn: str) -> tuple[ResourceType | None, str]:
    """(the registered type, the physical name) an ARN names; no type for a kind KRP does
    not make, and then the ARN's resource part as the name."""
    for kind in REGISTRY.values():
        physical_name = kind.physical_name_in(arn)
        if physical_name is not None:
            return kind, physical_name
    return None, arn.split(":", 5)[-1]


def _differences(expected: dict[str, Any], actual: dict[str, Any],
                 expected_tags: dict[str, str], actual_tags: dict[str, str]) -> dict[str, Any]:
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
