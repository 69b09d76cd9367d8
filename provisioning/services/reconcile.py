"""Reconcile: compare an environment's inventory with what its AWS account holds.

Finds resources KRP believes live that are gone (missing), resources whose tags or
settings differ from what KRP applied (drifted), resources tagged
krp:managed-by=krp that the inventory does not know (orphans: listed through the Resource
Groups Tagging API, and by each type that API does not return in its own way), and what
failed creates recorded they may have left (left_behind: looked up by those physical
names, since an untagged bucket is invisible to any listing by tag).
The listings vouch for existence and tags; settings are described in full for a rotating
share of the inventory each run, and for whatever the listings leave in doubt (see
reconcile_checks). Absence from a listing is never taken as proof that something is gone:
only a describe that finds nothing is.

Without `fix` it only reports. With `fix` it re-applies the spec to drifted resources,
marks missing ones and deletes what failed creates left behind; an orphan is deleted only
with `delete_orphans`. A resource that cannot be checked or fixed is recorded as such (an
`error` finding, or the finding's `not_fixed`) and the run goes on with the others.

Reconcile holds no lease, so each fix checks again, just before it writes to the cloud,
that no request on the resource is in flight: one submitted after the run listed the
requests would otherwise race it (a spec re-applied over an update, a leftover deleted
under a new create). The fix is then left undone, and the finding says why (`not_fixed`).

The run records its duration, its AWS calls by service (each HTTP attempt, counted by the
clients' hook for this run alone) and how many resources it checked and deep-checked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from dependency_injector.wiring import Provide, inject
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning import selectors
from provisioning.cloud import CallTally, CloudClients, IdentityGuard, classify_failure
from provisioning.metrics import instruments as metrics
from provisioning.models import (
    GONE_STATUSES,
    Finding,
    FindingKind,
    ReconcileRun,
    RequestStatus,
    Resource,
    ResourceRequest,
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
from provisioning.services.notifications import notify_drift
from provisioning.services.reconcile_checks import check_inventory, stack_membership

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


@inject
def reconcile(
    *,
    environment: str,
    fix: bool = False,
    delete_orphans: bool = False,
    deep: bool = False,
    triggered_by: str = "operator",
    progress: Progress | None = None,
    settings: KrpSettings = Provide[CoreContainer.settings],
    clients: CloudClients = Provide[CoreContainer.cloud],
    guard: IdentityGuard = Provide[CoreContainer.identity_guard],
) -> ReconcileRun:
    """Compare one environment's inventory with its account; record and return the run.
    `deep` describes every resource in full, not only the rotation's share."""
    say = progress or (lambda text: None)
    run = ReconcileRun.objects.create(environment=environment, fix=fix,
                                      delete_orphans=delete_orphans, triggered_by=triggered_by)
    started = time.monotonic()
    tally = CallTally()
    try:
        with tally.counting():
            env = settings.environment(environment)
            guard.confirm(environment)
            say(f"{environment}: listing resources tagged {MANAGED_BY}=krp")
            listed = _list_managed(clients, environment)
            say(f"{environment}: {len(listed)} listed in {sum(tally.by_service().values())} "
                "AWS call(s)")
            known = check_inventory(run=run, settings=settings, clients=clients,
                                    listed=listed, fix=fix, deep=deep, in_flight=_in_flight,
                                    say=say)
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
    run.duration_seconds = round(time.monotonic() - started, 3)
    run.aws_calls = tally.by_service()
    run.finding_count = run.findings.count()
    run.save(update_fields=["status", "error", "finished_at", "checked", "deep_checked",
                            "finding_count", "aws_calls", "duration_seconds"])
    metrics.reconcile_finished(run)
    say(f"{environment}: {run.status} in {run.duration_seconds:.1f} s, "
        f"{sum(run.aws_calls.values())} AWS call(s)")
    if run.status == ReconcileRun.Status.FINDINGS:
        notify_drift(run)
    return run


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
            try:
                observed = kind.describe(ctx)
            except Exception as exc:  # noqa: BLE001 - this name's; the run goes on
                error = classify_failure(exc)
                Finding.objects.create(
                    run=run, kind=FindingKind.ERROR, resource_type=kind.name, arn="",
                    details={"physical_name": physical_name, "request": str(request.pk),
                             "error": error.message, "code": error.code,
                             "during": "looking up what a failed create left behind"})
                remaining.append(physical_name)
                continue
            if observed is None:
                continue  # gone: nothing left behind any more
            found.add(observed.arn)
            finding = Finding(run=run, kind=FindingKind.LEFT_BEHIND,
                              resource_type=kind.name, arn=observed.arn,
                              details={"physical_name": physical_name,
                                       "request": str(request.pk), "tags": observed.tags,
                                       **stack_membership(request.pk)})
            busy_now = fix and _in_flight(environment, request.resource_type, [request.name])
            if busy_now:
                finding.details["not_fixed"] = busy_now
            elif fix:
                _delete_recorded(kind, ctx, finding)
            if not finding.action_taken:
                remaining.append(physical_name)
            finding.save()
        if remaining != request.left_behind:
            ResourceRequest.objects.filter(pk=request.pk).update(left_behind=remaining)
    return found


def _find_orphans(run: ReconcileRun, listed: dict[str, dict[str, str] | None], known: set[str],
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
        # No tags: a listing that gives none, of a resource some inventory knows.
        if tags is None or arn in known or tags.get(REQUEST_ID) in in_flight:
            continue
        kind, physical_name = _identify(arn)
        finding = Finding(run=run, kind=FindingKind.ORPHAN,
                          resource_type=kind.name if kind else "",
                          arn=arn, details={"tags": tags, "physical_name": physical_name})
        if kind is not None:
            # Tagged as this environment's, it is KRP's to take back rather than delete.
            finding.details["import"] = (f"krp import --env {run.environment} --type "
                                         f"{kind.name} --names {physical_name}")
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
            _delete_recorded(kind, ctx, finding)
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


def _list_managed(clients: CloudClients, environment: str
                  ) -> dict[str, dict[str, str] | None]:
    """ARN -> tags of everything KRP manages in the environment: one Tagging API listing
    for the types it returns (and KRP-tagged kinds KRP does not know), then each other
    registered type listed its own way; None where that listing gives no tags."""
    listed: dict[str, dict[str, str] | None] = dict(list_by_tag(clients, environment))
    for kind in REGISTRY.values():
        if not kind.listed_by_tag:
            # Every environment's: IAM is global, and other environments' roles of the
            # same account need no tags read to be told apart from orphans.
            known = set(Resource.objects.filter(resource_type=kind.name)
                        .exclude(status__in=GONE_STATUSES).values_list("arn", flat=True))
            listed.update(kind.list_managed(clients, environment, known))
    return listed


def _identify(arn: str) -> tuple[ResourceType | None, str]:
    """(the registered type, the physical name) an ARN names; no type for a kind KRP does
    not make, and then the ARN's resource part as the name."""
    for kind in REGISTRY.values():
        physical_name = kind.physical_name_in(arn)
        if physical_name is not None:
            return kind, physical_name
    return None, arn.split(":", 5)[-1]


def _delete_recorded(kind, ctx, finding: Finding) -> None:
    """Delete what a finding names from the cloud, recording on the finding whether it went
    (a failure is kept as `not_fixed`: the next run tries again)."""
    try:
        kind.delete(ctx)
    except Exception as exc:  # noqa: BLE001 - recorded; the next run tries again
        finding.details["not_fixed"] = classify_failure(exc).message
    else:
        finding.action_taken = "deleted from the cloud"
