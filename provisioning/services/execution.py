"""Carrying a request out in a worker: start under a lease, provision, record the outcome.

A job may run more than once (late acks, redelivery, the sweep); only one run at a time
holds a request, through a conditional start and a lease that the running worker renews.
Every provisioner step is idempotent, so a run that follows a crashed one adopts what
that one made.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from dependency_injector.wiring import Provide, inject
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning import selectors
from provisioning.cloud import CloudClients, IdentityGuard, classify_failure, spends_time
from provisioning.errors import (
    Conflict,
    KrpError,
    NotFound,
    PermanentCloudError,
)
from provisioning.models import (
    RequestAction,
    RequestEvent,
    RequestStatus,
    Resource,
    ResourceRequest,
)
from provisioning.resources import REGISTRY
from provisioning.resources.base import KRP_TAG_PREFIX, Observed, ProvisionContext
from provisioning.runtime import ProcessRuntime
from provisioning.services import inventory, plans, transitions
from provisioning.services.budget import backoff, may_retry, retry_delay, time_budget_end
from provisioning.services.dispatch import due_at
from provisioning.services.lease import Fence, LeaseKeeper, LeaseLost
from provisioning.services.transitions import TransitionRefused
from provisioning.signals import announce_on_commit

logger = logging.getLogger(__name__)

WORKER = "worker"
LOST_LEASE = "lost the lease before finishing"


class RunOutcome(StrEnum):
    """What one run of a job came to; the task's result carries the value as a string."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"  # a transient error: the task runs again after `retry_in`
    SKIPPED = "skipped"  # not this run's to make (gone, finished, held by another run)
    DEFERRED = "deferred"  # not due yet, or another request on the resource is running
    EXPIRED = "expired"
    # The cloud no longer matched the approved plan: planned again, waiting for approval.
    REPLANNED = "replanned"


@dataclass(frozen=True)
class Outcome:
    """What a run did; `retry_in` asks the task to run again after that many seconds."""

    status: RunOutcome
    detail: str = ""
    retry_in: float | None = None

    def as_result(self) -> dict[str, Any]:
        return {"outcome": self.status.value, "detail": self.detail}


@inject
def execute_request(
    *,
    request_id: str,
    task_id: str,
    settings: KrpSettings = Provide[CoreContainer.settings],
    runtime: ProcessRuntime = Provide[CoreContainer.runtime],
    clients: CloudClients = Provide[CoreContainer.cloud],
    guard: IdentityGuard = Provide[CoreContainer.identity_guard],
) -> Outcome:
    """Run one attempt of a request, if it is this run's to make."""
    started = _start(request_id, task_id, runtime.worker_id, settings)
    if isinstance(started, Outcome):
        return started
    request, first_use = started
    with LeaseKeeper(request.pk, runtime.worker_id, settings.lease_seconds,
                     generation=request.lease_generation) as keeper:
        try:
            guard.confirm(request.environment)
            kind, spec, ctx = _prepare(request, settings, clients, keeper=keeper,
                                       first_use=first_use)
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
            return _failed(request, classify_failure(exc), runtime.worker_id, settings)
        try:
            result = _provision(request, kind, spec, ctx)
        except LeaseLost as lost:
            # Another run holds the request: no rollback, no transition, nothing written.
            return Outcome(RunOutcome.SKIPPED, f"{LOST_LEASE}: {lost.message}")
        except plans.PlanChanged as changed:
            return _replanned(request, changed.plan, runtime.worker_id)
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
            error = classify_failure(exc)
            # A Conflict means the name is someone else's: there is nothing of ours to undo.
            roll_back = (
                (lambda: _roll_back(kind, ctx, request=request, settings=settings))
                if request.action == RequestAction.CREATE and not isinstance(error, Conflict)
                else None
            )
            return _failed(request, error, runtime.worker_id, settings, roll_back=roll_back)
    return _succeeded(request, result, runtime.worker_id)


def _start(request_id: str, task_id: str, worker_id: str,
           settings: KrpSettings) -> tuple[ResourceRequest, bool] | Outcome:
    """Take the request under a lease: the row as started, and whether its physical name
    is new to KRP (a create then needs no lookup first: see ProvisionContext.first_use)."""
    request = (ResourceRequest.objects.select_related("team")
               .annotate(name_used=selectors.name_used_elsewhere())
               .filter(pk=request_id).first())
    if request is None:
        return Outcome(RunOutcome.SKIPPED, f"request {request_id} does not exist")
    now = timezone.now()
    if request.status in (RequestStatus.PENDING_APPROVAL, RequestStatus.QUEUED) and (
        request.deadline and request.deadline <= now
    ):
        transitions.expire(request.pk, actor=WORKER, why="deadline passed before it could start",
                           quietly=True)
        return Outcome(RunOutcome.EXPIRED, f"deadline {request.deadline.isoformat()} passed")
    if request.status == RequestStatus.RUNNING and request.lease_expires_at and (
        request.lease_expires_at > now
    ):
        return Outcome(RunOutcome.SKIPPED, f"already running on {request.lease_owner}")
    if request.status not in (RequestStatus.QUEUED, RequestStatus.RUNNING):
        return Outcome(RunOutcome.SKIPPED, f"request is {request.status}")
    due = due_at(request)
    if request.status == RequestStatus.QUEUED and due and due > now + timedelta(seconds=1):
        # Early (a message from before a reschedule): the sweep publishes it when due.
        ResourceRequest.objects.filter(pk=request.pk, status=RequestStatus.QUEUED).update(
            published_at=None
        )
        return Outcome(RunOutcome.DEFERRED, f"not due until {due.isoformat()}")
    if request.attempts_spent >= settings.max_attempts:
        _fail_without_running(request, settings)
        return Outcome(RunOutcome.FAILED, "attempt budget spent")
    first_use = (request.action == RequestAction.CREATE and request.create_issued_at is None
                 and request.resource_id is None and not request.name_used)
    try:
        started = transitions.start(request, actor=WORKER, worker_id=worker_id, task_id=task_id,
                                    lease_seconds=settings.lease_seconds, now=now)
    except TransitionRefused as exc:
        return Outcome(RunOutcome.SKIPPED, str(exc))
    except IntegrityError:
        # Another request on the same resource is running: try again shortly.
        return Outcome(RunOutcome.DEFERRED, "another request on this resource is running",
                       retry_in=10)
    started.team = request.team  # the same team: spares the lazy load of its name
    return started, first_use


def _prepare(request: ResourceRequest, settings: KrpSettings, clients: CloudClients, *,
             keeper: LeaseKeeper | None = None, first_use: bool = False):
    """The type, the parsed spec and the provisioner's context for this request, whose
    clients are fenced by the lease this run started (`request` as start() returned it)."""
    if request.action == RequestAction.DELETE:
        inventory.mark_deleting(resource=request.resource)
    return _target(request, settings, clients, first_use=first_use,
                   fence=Fence(request_id=request.pk, worker_id=request.lease_owner,
                               generation=request.lease_generation, keeper=keeper))


def _target(request: ResourceRequest, settings: KrpSettings, clients: CloudClients, *,
            first_use: bool = False, fence: Fence | None = None):
    """The type, the parsed spec and a context for what `request` acts on."""
    kind = REGISTRY[request.resource_type]
    target = request.resource
    if request.action == RequestAction.IMPORT:
        spec = None  # read from the resource as the run describes it
    else:
        spec = kind.parse_spec(target.spec if request.action == RequestAction.DELETE
                               else request.spec)
    # What an update or delete acts on carries its creating request's id; a create (also
    # one that makes a missing resource again) tags what it makes with its own.
    owner_id = (str(target.created_by_request_id)
                if target and request.action != RequestAction.CREATE else str(request.pk))
    # An import does not know yet what its resource refers to: every resource of the types
    # it may refer to stands ready (an SNS topic's subscriptions name KRP queues).
    references = selectors.reference_arns(
        environment=request.environment,
        references=kind.references(spec) if spec is not None else selectors.referable(
            environment=request.environment, types=kind.refers_to_types))
    ctx = ProvisionContext.build(
        settings=settings,
        clients=clients,
        environment=request.environment,
        physical_name=request.physical_name,
        creating_request_id=owner_id,
        team=request.team.name,
        user_tags=request.tags,
        earlier_attempt=request.create_issued_at is not None,
        first_use=first_use,
        references=references,
        fence=fence,
    )
    return kind, spec, ctx


@inject
def plan_dry(
    *,
    resource_id: str | None,
    action: str,
    spec: dict[str, Any],
    tags: dict[str, str],
    environment: str,
    resource_type: str,
    name: str,
    physical_name: str,
    team: str,
    settings: KrpSettings = Provide[CoreContainer.settings],
    clients: CloudClients = Provide[CoreContainer.cloud],
    guard: IdentityGuard = Provide[CoreContainer.identity_guard],
) -> dict[str, Any]:
    """The plan of a request that nothing records (a dry run of an update, a delete or an
    import; the task krp.dry_plan, on its environment's queue): what it would change."""
    resource = (Resource.objects.select_related("created_by_request").get(pk=resource_id)
                if resource_id else None)
    request = ResourceRequest(
        environment=environment, resource_type=resource_type, name=name, action=action,
        spec=spec, tags=tags, team=Group.objects.get(name=team),
        physical_name=physical_name, resource=resource)
    try:
        guard.confirm(request.environment)
        kind, parsed, ctx = _target(request, settings, clients)
        return plans.plan_of(request, kind, parsed, ctx)
    except Exception as exc:  # noqa: BLE001 - every failure is classified and answered
        error = classify_failure(exc)
        return plans.failed(error.code, error.message)


@inject
def plan_waiting(
    *,
    request_id: str,
    settings: KrpSettings = Provide[CoreContainer.settings],
    clients: CloudClients = Provide[CoreContainer.cloud],
    guard: IdentityGuard = Provide[CoreContainer.identity_guard],
) -> dict[str, Any] | None:
    """Plan a request that waits for approval (the task krp.plan, run by a worker of its
    environment): keep the plan on it for the approver, with an event. A plan that could
    not be made says why; approving then plans again as the request runs."""
    request = (ResourceRequest.objects.select_related("team", "resource")
               .filter(pk=request_id, status=RequestStatus.PENDING_APPROVAL,
                       plan__isnull=True).first())
    if request is None:
        return None  # not waiting, or planned already
    try:
        if request.action != RequestAction.CREATE:  # a create's plan looks at nothing
            guard.confirm(request.environment)
        kind, spec, ctx = _target(request, settings, clients)
        plan = plans.plan_of(request, kind, spec, ctx)
    except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
        error = classify_failure(exc)
        plan = plans.failed(error.code, error.message)
    with transaction.atomic():
        if plans.record(request, plan, only_while=RequestStatus.PENDING_APPROVAL,
                        only_unplanned=True):
            message = "planned: " + "; ".join(plan["lines"])
            RequestEvent.objects.create(
                request=request, from_status=RequestStatus.PENDING_APPROVAL,
                to_status=RequestStatus.PENDING_APPROVAL, actor=WORKER, message=message)
            request.plan = plan
            announce_on_commit(request, from_status=RequestStatus.PENDING_APPROVAL,
                               to_status=RequestStatus.PENDING_APPROVAL, actor=WORKER,
                               message=message)
    return plan


def _provision(request: ResourceRequest, kind, spec, ctx: ProvisionContext) -> dict[str, Any]:
    """Carry the request out, after its plan: a create records its plan with the write
    that precedes the create call (record before create); an update or delete stops with
    PlanChanged if the cloud no longer matches an approved plan, and an update whose plan
    has no changes sends no mutating call."""
    if request.action == RequestAction.CREATE:
        first_plan = ({"plan": plans.plan_of(request, kind, spec, ctx)}
                      if request.plan is None else {})
        ResourceRequest.objects.filter(pk=request.pk, create_issued_at__isnull=True).update(
            create_issued_at=timezone.now(), **first_plan)
        observed = kind.create(ctx, spec)
    elif request.action == RequestAction.UPDATE:
        current = kind.describe(ctx)
        if current is None:
            raise PermanentCloudError(
                f"{request.resource_type} {request.physical_name} is gone from the cloud; "
                "nothing to update", "ResourceMissing",
            )
        ctx.claim(current.tags, request.resource_type)
        plan = plans.plan_of(request, kind, spec, ctx, current=current, looked=True)
        plans.check(request, plan)
        observed = current if plan["no_changes"] else kind.update(ctx, spec)
    elif request.action == RequestAction.IMPORT:
        observed = _import(request, kind, ctx)
    else:
        plans.check(request, plans.plan_of(request, kind, spec, ctx))
        kind.delete(ctx)
        return {"deleted": True, "physical_name": request.physical_name}
    return {
        **observed.outputs(),
        "physical_name": request.physical_name,
        "_tags": observed.tags,
    }


def _roll_back(kind, ctx: ProvisionContext, *, request: ResourceRequest,
               settings: KrpSettings) -> tuple[str, list[str]]:
    """Remove what a failed create made, so a failed request leaves nothing behind: a note
    for the error message, and the physical names it could not remove.

    A step like any other: retried under the request's budget, here inside the run with
    the same backoff (a rollback is a few calls; the run keeps its lease renewed while it
    waits, and a hand-back would need a "rolling back" state that every later step honours),
    within half the task's soft time limit so the run can still record its outcome.
    delete() claims before it deletes: it removes only what this request made. The create
    was recorded (create_issued_at) before its call, so an untagged resource of this name is
    this request's own (a bucket whose tagging call never came): claim that too.
    """
    ctx = replace(ctx, earlier_attempt=True)
    stop_by = min(time_budget_end(request=request, settings=settings),
                  (request.started_at or timezone.now())
                  + timedelta(seconds=settings.task_time_limit_seconds / 2))
    tries = 0
    while True:
        tries += 1
        try:
            if kind.describe(ctx) is None:
                return "", []
            kind.delete(ctx)
            return f"; removed the partly made {kind.name} {ctx.physical_name}", []
        except Exception as exc:  # noqa: BLE001 - classified: retried, or recorded
            error = classify_failure(exc)
            delay = backoff(tries=tries, settings=settings)
            at = timezone.now() + timedelta(seconds=delay)
            if not may_retry(request=request, error=error, tries_spent=tries,
                             settings=settings, at=at) or at >= stop_by:
                logger.warning("could not roll back %s %s after %d tries: %s", kind.name,
                               ctx.physical_name, tries, error)
                return (f"; {kind.name} {ctx.physical_name} may be left in the cloud (roll back "
                        f"failed: {error.code}: {error.message}); reconcile reports it until "
                        "it is gone", [ctx.physical_name])
            logger.info("roll back of %s %s hit %s; trying again in %.0f s", kind.name,
                        ctx.physical_name, error.code, delay)
            time.sleep(delay)


def _import(request: ResourceRequest, kind, ctx: ProvisionContext) -> Observed:
    """Take over a resource made outside KRP: describe it, refuse it if another environment
    (or another of KRP's resources) claims it, read its settings into a spec, and tag it as
    KRP's, keeping its own tags. The request records the spec it read, which the inventory
    then holds."""
    current = kind.describe(ctx)
    if current is None:
        raise PermanentCloudError(
            f"{kind.name} {request.physical_name} is not in account {ctx.account_id} "
            f"({ctx.region}); nothing to import", "ResourceMissing")
    ctx.claim_for_import(current.tags, kind.name)
    spec = kind.parse_spec(kind.spec_from(current))
    kept_tags = {**plans.user_tags(current.tags), **request.tags}
    request.spec, request.tags = spec.model_dump(mode="json"), kept_tags
    plans.check(request, plans.plan_of(request, kind, spec, ctx, current=current, looked=True))
    ResourceRequest.objects.filter(pk=request.pk).update(spec=request.spec, tags=kept_tags)
    # earlier_attempt: what carries no KRP tag yet (a DLQ too) is the import's to claim.
    tagged = replace(ctx, earlier_attempt=True, tags={
        **kept_tags,
        **{key: value for key, value in ctx.tags.items() if key.startswith(KRP_TAG_PREFIX)}})
    return kind.update(tagged, spec)


def _replanned(request: ResourceRequest, plan: dict[str, Any], worker_id: str) -> Outcome:
    """The cloud changed behind KRP's back since the plan was approved: nothing is applied;
    the request waits for approval again, with the new plan."""
    with transaction.atomic():
        waiting = transitions.replan(request.pk, actor=WORKER, lease_owner=worker_id,
                                     plan=plan)
        if waiting is None:
            logger.warning("request %s: generation %s on %s lost its lease; the cloud "
                           "changed since the approved plan, nothing sent", request.pk,
                           request.lease_generation, worker_id)
            return Outcome(RunOutcome.SKIPPED, LOST_LEASE)
        if request.action == RequestAction.DELETE:
            inventory.undo_deleting(request=waiting)
    return Outcome(RunOutcome.REPLANNED, "the cloud changed since the plan was approved")


def _succeeded(request: ResourceRequest, result: dict[str, Any], worker_id: str) -> Outcome:
    tags = result.pop("_tags", {})
    now = timezone.now()
    with transaction.atomic():
        try:
            done = transitions.succeed(
                request.pk, actor=WORKER, worker_id=worker_id,
                message=f"{request.action} done on {worker_id}", outputs=result, now=now,
            )
        except TransitionRefused as exc:
            logger.warning("request %s finished after losing its lease: %s", request.pk, exc)
            return Outcome(RunOutcome.SKIPPED, LOST_LEASE)
        inventory.record_success(request=done, result=result, tags=tags, now=now)
    return Outcome(RunOutcome.SUCCEEDED)


def _failed(request: ResourceRequest, error: KrpError, worker_id: str,
            settings: KrpSettings, roll_back=None) -> Outcome:
    """Queue a retry for a transient error within its budget (services.budget); otherwise
    fail the request, first removing what a failed create made (roll_back) and recording
    what it could not remove."""
    now = timezone.now()
    retry_in = retry_delay(request=request, error=error, settings=settings, now=now)
    if retry_in is not None:
        budget = ("time budget" if spends_time(error)
                  else f"attempt {request.attempts_spent} of {settings.max_attempts}")
        with transaction.atomic():
            requeued = transitions.requeue(
                request.pk, actor=WORKER, lease_owner=worker_id,
                message=f"attempt {request.attempts} hit {error.code}: {error.message}; "
                        f"retrying in {retry_in:.0f} s ({budget})",
                error_code=error.code, error_message=error.message,
                retry_at=now + timedelta(seconds=retry_in), quietly=True,
            )
            if requeued is None:
                return Outcome(RunOutcome.SKIPPED, LOST_LEASE)
            if spends_time(error):
                ResourceRequest.objects.filter(pk=request.pk).update(
                    weather_attempts=F("weather_attempts") + 1)
        return Outcome(RunOutcome.RETRYING, f"{error.code}: {error.message}", retry_in=retry_in)
    holds_lease = selectors.request_holds_lease(request_id=request.pk, worker_id=worker_id)
    # A run that lost its lease must not undo what the run that took over has made.
    note, left_behind = roll_back() if roll_back and holds_lease else ("", [])
    with transaction.atomic():
        failed = transitions.fail(
            request.pk, actor=WORKER, lease_owner=worker_id,
            message=f"{error.code}: {error.message}{note}",
            error_code=error.code, error_message=error.message + note, now=now, quietly=True,
        )
        if failed is None:
            return Outcome(RunOutcome.SKIPPED, LOST_LEASE)
        if left_behind:
            ResourceRequest.objects.filter(pk=request.pk).update(left_behind=left_behind)
        inventory.undo_deleting(request=request)
    return Outcome(RunOutcome.FAILED, f"{error.code}: {error.message}")


def _fail_without_running(request: ResourceRequest, settings: KrpSettings) -> None:
    message = (
        f"gave up after {request.attempts} attempts (KRP_MAX_ATTEMPTS={settings.max_attempts})"
        + (f"; last error {request.error_code}: {request.error_message}"
           if request.error_code else "")
    )
    with transaction.atomic():
        if transitions.give_up(request, actor=WORKER, message=message, quietly=True) is not None:
            inventory.undo_deleting(request=request)


def refuse_request(*, request_id: Any, error: KrpError) -> None:
    """Fail a request whose job this worker refused (e.g. its settings differ)."""
    if not request_id:
        return
    try:
        transitions.refuse(
            request_id, actor=WORKER, message=f"{error.code}: {error.message}",
            error_code=error.code, error_message=error.message,
        )
    except (TransitionRefused, NotFound, ValueError):
        logger.warning("refused job for request %s, which is not queued here", request_id)


def mark_published(*, request_id: Any, task_id: str) -> None:
    """Celery republished the job (a retry): the sweep need not publish it again."""
    ResourceRequest.objects.filter(
        pk=request_id, status=RequestStatus.QUEUED, task_id=task_id
    ).update(published_at=timezone.now())
