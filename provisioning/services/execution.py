"""Carrying a request out in a worker: start under a lease, provision, record the outcome.

A job may run more than once (late acks, redelivery, the sweep); only one run at a time
holds a request, through a conditional start and a lease that the running worker renews.
Every provisioner step is idempotent, so a run that follows a crashed one adopts what
that one made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery.utils.time import get_exponential_backoff_interval
from dependency_injector.wiring import Provide, inject
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.cloud import CloudClients, IdentityGuard, classify_failure
from provisioning.errors import Conflict, KrpError, PermanentCloudError, TransientCloudError
from provisioning.models import (
    RequestAction,
    RequestStatus,
    Resource,
    ResourceRequest,
    ResourceStatus,
)
from provisioning.resources import REGISTRY
from provisioning.resources.base import ProvisionContext
from provisioning.runtime import ProcessRuntime
from provisioning.services.dispatch import due_at
from provisioning.services.lease import LeaseKeeper
from provisioning.services.transitions import TransitionRefused, transition

logger = logging.getLogger(__name__)

WORKER = "worker"


@dataclass(frozen=True)
class Outcome:
    """What a run did; `retry_in` asks the task to run again after that many seconds."""

    status: str
    detail: str = ""
    retry_in: float | None = None

    def as_result(self) -> dict[str, Any]:
        return {"outcome": self.status, "detail": self.detail}


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
    request = started
    with LeaseKeeper(request.pk, runtime.worker_id, settings.lease_seconds):
        try:
            guard.confirm(request.environment)
            kind, spec, ctx = _prepare(request, settings, clients)
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
            return _failed(request, classify_failure(exc), runtime.worker_id, settings)
        try:
            result = _provision(request, kind, spec, ctx)
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
            error = classify_failure(exc)
            # A Conflict means the name is someone else's: there is nothing of ours to undo.
            roll_back = (
                (lambda: _roll_back(kind, ctx))
                if request.action == RequestAction.CREATE and not isinstance(error, Conflict)
                else None
            )
            return _failed(request, error, runtime.worker_id, settings, roll_back=roll_back)
    return _succeeded(request, result, runtime.worker_id)


def _start(request_id: str, task_id: str, worker_id: str,
           settings: KrpSettings) -> ResourceRequest | Outcome:
    request = ResourceRequest.objects.filter(pk=request_id).first()
    if request is None:
        return Outcome("skipped", f"request {request_id} does not exist")
    now = timezone.now()
    if request.status in (RequestStatus.PENDING_APPROVAL, RequestStatus.QUEUED) and (
        request.deadline and request.deadline <= now
    ):
        _expire(request, "deadline passed before it could start")
        return Outcome("expired", f"deadline {request.deadline.isoformat()} passed")
    if request.status == RequestStatus.RUNNING and request.lease_expires_at and (
        request.lease_expires_at > now
    ):
        return Outcome("skipped", f"already running on {request.lease_owner}")
    if request.status not in (RequestStatus.QUEUED, RequestStatus.RUNNING):
        return Outcome("skipped", f"request is {request.status}")
    due = due_at(request)
    if request.status == RequestStatus.QUEUED and due and due > now + timedelta(seconds=1):
        # Early (a message from before a reschedule): the sweep publishes it when due.
        ResourceRequest.objects.filter(pk=request.pk, status=RequestStatus.QUEUED).update(
            published_at=None
        )
        return Outcome("deferred", f"not due until {due.isoformat()}")
    if request.attempts >= settings.max_attempts:
        _fail_without_running(request, settings)
        return Outcome("failed", "attempt budget spent")
    taking_over = request.status == RequestStatus.RUNNING
    try:
        return transition(
            request.pk,
            from_statuses=[request.status],
            to=RequestStatus.RUNNING,
            actor=WORKER,
            message=(
                f"attempt {request.attempts + 1} on {worker_id}"
                + (f", taking over from {request.lease_owner} whose lease lapsed"
                   if taking_over else "")
            ),
            # A lapsed lease is the condition for taking over a running request.
            extra_filter={"lease_expires_at__lte": now} if taking_over else None,
            attempts=request.attempts + 1,
            started_at=now,
            task_id=task_id,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=settings.lease_seconds),
        )
    except TransitionRefused as exc:
        return Outcome("skipped", str(exc))
    except IntegrityError:
        # Another request on the same resource is running: try again shortly.
        return Outcome("deferred", "another request on this resource is running", retry_in=10)


def _prepare(request: ResourceRequest, settings: KrpSettings, clients: CloudClients):
    """The type, the parsed spec and the provisioner's context for this request."""
    kind = REGISTRY[request.resource_type]
    target = request.resource
    if request.action == RequestAction.DELETE:
        spec = kind.parse_spec(target.spec)
        Resource.objects.filter(pk=target.pk).update(status=ResourceStatus.DELETING)
    else:
        spec = kind.parse_spec(request.spec)
    owner_id = str(target.created_by_request_id) if target else str(request.pk)
    references = {
        (ref.resource_type, ref.name): ref.arn
        for ref in Resource.objects.filter(
            environment=request.environment,
            status__in=[ResourceStatus.ACTIVE, ResourceStatus.DRIFTED],
        ).filter(_any_of(kind.references(spec)))
    } if kind.references(spec) else {}
    ctx = ProvisionContext.build(
        settings=settings,
        clients=clients,
        environment=request.environment,
        physical_name=request.physical_name,
        creating_request_id=owner_id,
        team=request.team.name,
        user_tags=request.tags,
        earlier_attempt=request.create_issued_at is not None,
        references=references,
    )
    return kind, spec, ctx


def _provision(request: ResourceRequest, kind, spec, ctx: ProvisionContext) -> dict[str, Any]:
    if request.action == RequestAction.CREATE:
        ResourceRequest.objects.filter(pk=request.pk, create_issued_at__isnull=True).update(
            create_issued_at=timezone.now()
        )
        observed = kind.create(ctx, spec)
    elif request.action == RequestAction.UPDATE:
        current = kind.describe(ctx)
        if current is None:
            raise PermanentCloudError(
                f"{request.resource_type} {request.physical_name} is gone from the cloud; "
                "nothing to update", "ResourceMissing",
            )
        ctx.claim(current.tags, request.resource_type)
        observed = kind.update(ctx, spec)
    else:
        kind.delete(ctx)
        return {"deleted": True, "physical_name": request.physical_name}
    return {
        **observed.outputs(),
        "physical_name": request.physical_name,
        "_tags": observed.tags,
    }


def _roll_back(kind, ctx: ProvisionContext) -> str:
    """Remove what a failed create made, so a failed request leaves nothing behind.

    delete() claims before it deletes: it removes only what this request made.
    """
    try:
        if kind.describe(ctx) is None:
            return ""
        kind.delete(ctx)
        return f"; removed the partly made {kind.name} {ctx.physical_name}"
    except Exception as exc:  # noqa: BLE001 - the failure itself is what gets recorded
        logger.warning("could not roll back %s %s: %s", kind.name, ctx.physical_name, exc)
        return (f"; {kind.name} {ctx.physical_name} may be left in the cloud "
                f"(roll back failed: {exc})")


def _succeeded(request: ResourceRequest, result: dict[str, Any], worker_id: str) -> Outcome:
    tags = result.pop("_tags", {})
    now = timezone.now()
    with transaction.atomic():
        try:
            done = transition(
                request.pk, from_statuses=[RequestStatus.RUNNING], to=RequestStatus.SUCCEEDED,
                actor=WORKER, message=f"{request.action} done on {worker_id}",
                extra_filter={"lease_owner": worker_id},
                outputs=result, finished_at=now, lease_owner="", lease_expires_at=None,
                error_code="", error_message="",
            )
        except TransitionRefused as exc:
            logger.warning("request %s finished after losing its lease: %s", request.pk, exc)
            return Outcome("skipped", "lost the lease before finishing")
        _record_inventory(done, result, tags, now)
    return Outcome("succeeded")


def _record_inventory(request: ResourceRequest, result: dict[str, Any],
                      tags: dict[str, str], now) -> None:
    if request.action == RequestAction.DELETE:
        Resource.objects.filter(pk=request.resource_id).update(
            status=ResourceStatus.DELETED, deleted_at=now, last_verified_at=now
        )
        return
    fields = {
        "physical_name": request.physical_name,
        "physical_id": result["physical_id"],
        "arn": result["arn"],
        "spec": request.spec,
        "tags": tags,
        "outputs": {k: v for k, v in result.items() if k != "physical_name"},
        "status": ResourceStatus.ACTIVE,
        "last_verified_at": now,
    }
    if request.action == RequestAction.UPDATE:
        Resource.objects.filter(pk=request.resource_id).update(**fields)
        return
    resource = Resource.objects.create(
        environment=request.environment, resource_type=request.resource_type,
        name=request.name, team=request.team, created_by_request=request, **fields,
    )
    ResourceRequest.objects.filter(pk=request.pk).update(resource=resource)


def _failed(request: ResourceRequest, error: KrpError, worker_id: str,
            settings: KrpSettings, roll_back=None) -> Outcome:
    """Queue a retry for a transient error within the budget; otherwise fail the request,
    first removing what a failed create made (roll_back)."""
    now = timezone.now()
    retry_in = None
    if isinstance(error, TransientCloudError) and request.attempts < settings.max_attempts:
        retry_in = get_exponential_backoff_interval(
            factor=settings.retry_backoff_seconds, retries=request.attempts - 1,
            maximum=settings.retry_backoff_max_seconds, full_jitter=True,
        ) or 1
        if request.deadline and now + timedelta(seconds=retry_in) >= request.deadline:
            retry_in = None
    if retry_in is not None:
        try:
            transition(
                request.pk, from_statuses=[RequestStatus.RUNNING], to=RequestStatus.QUEUED,
                actor=WORKER, extra_filter={"lease_owner": worker_id},
                message=f"attempt {request.attempts} hit {error.code}: {error.message}; "
                        f"retrying in {retry_in:.0f} s",
                error_code=error.code, error_message=error.message,
                next_attempt_at=now + timedelta(seconds=retry_in), published_at=None,
                lease_owner="", lease_expires_at=None,
            )
        except TransitionRefused:
            return Outcome("skipped", "lost the lease before finishing")
        return Outcome("retrying", f"{error.code}: {error.message}", retry_in=retry_in)
    holds_lease = ResourceRequest.objects.filter(
        pk=request.pk, status=RequestStatus.RUNNING, lease_owner=worker_id
    ).exists()
    # A run that lost its lease must not undo what the run that took over has made.
    note = roll_back() if roll_back and holds_lease else ""
    with transaction.atomic():
        try:
            transition(
                request.pk, from_statuses=[RequestStatus.RUNNING], to=RequestStatus.FAILED,
                actor=WORKER, extra_filter={"lease_owner": worker_id},
                message=f"{error.code}: {error.message}{note}",
                error_code=error.code, error_message=error.message + note, finished_at=now,
                lease_owner="", lease_expires_at=None,
            )
        except TransitionRefused:
            return Outcome("skipped", "lost the lease before finishing")
        undo_deleting(request)
    return Outcome("failed", f"{error.code}: {error.message}")


def undo_deleting(request: ResourceRequest) -> None:
    """A delete that failed leaves its resource as it was: active again, not 'deleting'."""
    if request.action == RequestAction.DELETE and request.resource_id:
        Resource.objects.filter(
            pk=request.resource_id, status=ResourceStatus.DELETING
        ).update(status=ResourceStatus.ACTIVE)


def _fail_without_running(request: ResourceRequest, settings: KrpSettings) -> None:
    message = (
        f"gave up after {request.attempts} attempts (KRP_MAX_ATTEMPTS={settings.max_attempts})"
        + (f"; last error {request.error_code}: {request.error_message}"
           if request.error_code else "")
    )
    try:
        with transaction.atomic():
            transition(
                request.pk, from_statuses=[request.status], to=RequestStatus.FAILED,
                actor=WORKER, message=message,
                error_code=request.error_code or "attempts_exhausted",
                error_message=message, finished_at=timezone.now(), lease_owner="",
                lease_expires_at=None,
            )
            undo_deleting(request)
    except TransitionRefused:
        pass


def _expire(request: ResourceRequest, why: str) -> None:
    try:
        transition(
            request.pk, from_statuses=[RequestStatus.PENDING_APPROVAL, RequestStatus.QUEUED],
            to=RequestStatus.EXPIRED, actor=WORKER, message=why,
            error_code="expired", error_message=why, finished_at=timezone.now(),
        )
    except TransitionRefused:
        pass


def refuse_request(*, request_id: Any, error: KrpError) -> None:
    """Fail a request whose job this worker refused (e.g. its settings differ)."""
    if not request_id:
        return
    try:
        transition(
            request_id, from_statuses=[RequestStatus.QUEUED], to=RequestStatus.FAILED,
            actor=WORKER, message=f"{error.code}: {error.message}",
            error_code=error.code, error_message=error.message, finished_at=timezone.now(),
        )
    except (TransitionRefused, ValueError):
        logger.warning("refused job for request %s, which is not queued here", request_id)


def mark_published(*, request_id: Any, task_id: str) -> None:
    """Celery republished the job (a retry): the sweep need not publish it again."""
    ResourceRequest.objects.filter(
        pk=request_id, status=RequestStatus.QUEUED, task_id=task_id
    ).update(published_at=timezone.now())


def _any_of(pairs: list[tuple[str, str]]) -> Q:
    condition = Q(pk__in=[])
    for type_name, name in pairs:
        condition |= Q(resource_type=type_name, name=name)
    return condition
