"""Celery tasks. Thin: check the settings fingerprint, then call one service.

Every KRP task message carries its producer's settings fingerprint in a header; a worker
whose own fingerprint differs refuses the job before it touches AWS or the database.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Retry

from krp_project.celery import provision_task_name
from provisioning import health
from provisioning.errors import SettingsMismatch
from provisioning.resources import REGISTRY
from provisioning.services import execute_request, sweep
from provisioning.services.deliveries import attempt_delivery
from provisioning.services.dispatch import DRY_PLAN_TASK, PLAN_TASK, queue_of
from provisioning.services.execution import (
    mark_published,
    plan_dry,
    plan_waiting,
    refuse_request,
)
from provisioning.services.imports import CANDIDATES_TASK, import_candidates
from provisioning.services.notifications import DELIVER_TASK
from provisioning.services.reconcile import reconcile
from provisioning.services.stacks import ADVANCE_TASK, stack_advance

logger = logging.getLogger(__name__)

FINGERPRINT_HEADER = "krp_fingerprint"


class KrpTask(Task):
    """Base of every KRP task: stamps the fingerprint on publish, checks it on run."""

    abstract = True

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, link=None,
                    link_error=None, shadow=None, **options):
        headers = dict(options.pop("headers", None) or {})
        headers.setdefault(FINGERPRINT_HEADER, self.app.container.settings().fingerprint)
        return super().apply_async(
            args, kwargs, task_id=task_id, producer=producer, link=link,
            link_error=link_error, shadow=shadow, headers=headers, **options,
        )

    def apply(self, args=None, kwargs=None, *positional, headers=None, **options):
        """In eager mode a chain or chord (a stack's step) runs its tasks through apply,
        not apply_async: stamp those runs too, or each would be refused as foreign."""
        headers = dict(headers or {})
        headers.setdefault(FINGERPRINT_HEADER, self.app.container.settings().fingerprint)
        return super().apply(args, kwargs, *positional, headers=headers, **options)

    def __call__(self, *args, **kwargs):
        self.refuse_foreign_settings()
        return super().__call__(*args, **kwargs)

    def refuse_foreign_settings(self) -> None:
        ours = self.app.container.settings().fingerprint
        theirs = message_fingerprint(self.request)
        if theirs != ours:
            logger.error(
                "refused task %s[%s]: published with settings fingerprint %s, this worker has %s",
                self.name, self.request.id, theirs, ours,
            )
            raise SettingsMismatch(
                f"refused: the job was published with settings fingerprint {theirs or '(none)'} "
                f"but this worker's is {ours}; web and worker disagree on where changes land "
                "(account, region, endpoint, role, database or queues). "
                "Compare `manage.py krp check` on both hosts."
            )


def message_fingerprint(request: Any) -> str | None:
    """The producer's fingerprint: a message header in a worker, request headers when eager."""
    value = getattr(request, FINGERPRINT_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(FINGERPRINT_HEADER)
    return value


@shared_task(bind=True, base=KrpTask, name="krp.environment_check")
def environment_check(self: KrpTask, environment: str) -> dict[str, Any]:
    """Run by a worker of `environment`'s queue: confirm its credentials resolve to the
    environment's account and report which process and settings did the check."""
    return health.environment_check(environment=environment)


class RequestTask(KrpTask):
    """A provisioning job. A refusal for foreign settings is also written on the request."""

    abstract = True

    def refuse_foreign_settings(self) -> None:
        try:
            super().refuse_foreign_settings()
        except SettingsMismatch as exc:
            refuse_request(request_id=self.request.kwargs.get("request_id"), error=exc)
            raise


def _provision_task(type_name: str) -> Task:
    # max_retries=None on the task: retry(max_retries=None) would mean Celery's default of
    # 3 retries, after which the job raised MaxRetriesExceededError and its request sat
    # queued until the sweep published it again.
    @shared_task(bind=True, base=RequestTask, name=provision_task_name(type_name),
                 max_retries=None)
    def provision(self: RequestTask, request_id: str) -> dict[str, Any]:
        """Carry out one attempt of a request for a {type_name}."""
        outcome = execute_request(request_id=request_id, task_id=self.request.id)
        if self.request.is_eager:
            # No worker and no beat: wait out the backoff here rather than leave the
            # request for a sweep that may never run (the request's budget, by attempts or
            # by time, ends the loop: retry_in is None once it is spent).
            while outcome.retry_in is not None:
                time.sleep(outcome.retry_in)
                outcome = execute_request(request_id=request_id, task_id=self.request.id)
            return outcome.as_result()
        if outcome.retry_in is not None:
            try:
                # The request's own budget decides when to stop; Celery republishes
                # the message with the backoff as its countdown.
                # To the environment's queue by name: from the message's delivery info
                # alone, RabbitMQ's delayed delivery sent it to the control queue.
                raise self.retry(countdown=outcome.retry_in, queue=queue_of(request_id))
            except Retry:
                mark_published(request_id=request_id, task_id=self.request.id)
                raise
        return outcome.as_result()

    return provision


PROVISION_TASKS = {type_name: _provision_task(type_name) for type_name in REGISTRY}


def provision_task(type_name: str) -> Task:
    return PROVISION_TASKS[type_name]


@shared_task(bind=True, base=KrpTask, name=PLAN_TASK)
def plan_request(self: KrpTask, request_id: str) -> dict[str, Any]:
    """Plan a request that waits for approval, on its environment's queue (credentials
    live there): the approver sees what it will change."""
    plan = plan_waiting(request_id=request_id)
    return {"request": request_id, "planned": plan is not None and "error" not in plan}


@shared_task(bind=True, base=KrpTask, name=DRY_PLAN_TASK)
def dry_plan(self: KrpTask, **request: Any) -> dict[str, Any]:
    """A dry run's plan of an update, a delete or an import, by a worker of the request's
    environment (the fields of the request it would be); the web process that asked waits
    for this result."""
    return plan_dry(**request)


@shared_task(bind=True, base=KrpTask, name=CANDIDATES_TASK)
def list_import_candidates(self: KrpTask, environment: str, resource_type: str,
                           tag: str | None = None) -> list[str]:
    """What `krp import --all-untagged` or `--tag` may import, listed by a worker of the
    environment; the command that asked waits for this result."""
    return import_candidates(environment=environment, resource_type=resource_type, tag=tag)


@shared_task(bind=True, base=KrpTask, name=ADVANCE_TASK)
def advance_stack(self: KrpTask, stack_id: str) -> dict[str, Any]:
    """A stack step's chord callback: record and publish the next step, or settle the
    stack's status from its members'."""
    stack = stack_advance(stack_id=stack_id)
    return {"stack": stack_id, "status": stack.status if stack else "gone"}


@shared_task(bind=True, base=KrpTask, name="krp.sweep")
def sweep_requests(self: KrpTask) -> dict[str, list[str]]:
    """Periodic (beat): expire, take back lapsed leases, publish what is due."""
    return sweep().as_dict()


@shared_task(bind=True, base=KrpTask, name="krp.reconcile")
def reconcile_environment(self: KrpTask, environment: str) -> dict[str, Any]:
    """Periodic (beat), on the environment's own queue: compare its inventory with its
    account and record the findings (report only; operators fix with `krp reconcile`)."""
    run = reconcile(environment=environment, triggered_by="beat")
    return {"run": str(run.pk), "status": run.status, "checked": run.checked,
            "deep_checked": run.deep_checked, "findings": run.finding_count,
            "aws_calls": run.aws_calls, "duration_seconds": run.duration_seconds}


@shared_task(bind=True, base=KrpTask, name=DELIVER_TASK, max_retries=None)
def deliver_notification(self: KrpTask, delivery_id: str) -> dict[str, Any]:
    """Send one notification (a webhook POST or an email), on the control queue; retried
    with backoff until it is delivered or its attempts are spent (the delivery row counts
    them, so max_retries is not Celery's business)."""
    attempt = attempt_delivery(delivery_id=delivery_id, eager=bool(self.request.is_eager))
    if attempt.retry_in is not None:
        raise self.retry(countdown=attempt.retry_in,
                         queue=self.app.container.settings().control_queue)
    return attempt.as_result()
