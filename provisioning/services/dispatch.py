"""Publishing a queued request's job to its environment's queue.

The message is published after the recording transaction commits, with the task id stored
on the row, so a worker never looks for a row that is not there yet. A publish that fails
(broker down) leaves published_at empty, and the sweep publishes it again.

A request recorded by a submission is stamped published in the INSERT itself (one write
fewer on the accept path); a failed publish takes the stamp back. Should the process die
between the commit and the publish, the stamp stays without a message: the sweep publishes
it again as a lost message, once KRP_QUEUED_STALE_SECONDS have passed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from dependency_injector.wiring import Provide, inject
from django.db import transaction
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.models import RequestStatus, ResourceRequest
from provisioning.services import transitions

if TYPE_CHECKING:  # the project's app factory; services only call what it built
    from krp_project.celery import KrpCelery

logger = logging.getLogger(__name__)


def publish_on_commit(request: ResourceRequest) -> None:
    """Publish the request's job once the current transaction commits, as it is then."""
    transaction.on_commit(partial(publish, request.pk))


def publish_recorded_on_commit(request: ResourceRequest) -> None:
    """Publish the job of a request recorded in the current transaction once it commits,
    from the values in hand: nothing else can have changed a row that no one could see.
    Its published_at, stamped in the INSERT (publishes_at_once), is taken back if the
    publish fails."""
    transaction.on_commit(partial(publish_request, request, stamped=request.published_at))


PLAN_TASK = "krp.plan"
DRY_PLAN_TASK = "krp.dry_plan"


def publish_plan_on_commit(request: ResourceRequest) -> None:
    """Have a worker of the request's environment plan it once the transaction commits
    (the task krp.plan on the environment's queue): the approver then sees the plan. A
    publish that fails is logged; the request is planned as it runs instead."""
    transaction.on_commit(partial(_send_plan, request.pk, request.environment))


@inject
def _send_plan(request_id, environment: str, *,
               settings: KrpSettings = Provide[CoreContainer.settings],
               celery_app: KrpCelery = Provide[CoreContainer.celery_app]) -> None:
    try:
        celery_app.signature(PLAN_TASK, kwargs={"request_id": str(request_id)},
                             queue=settings.environment(environment).queue).apply_async()
    except Exception as exc:  # noqa: BLE001 - the broker's errors vary by transport
        logger.warning("could not publish the plan of request %s (%s: %s); it is planned "
                       "when it runs", request_id, type(exc).__name__, exc)


def publishes_at_once(*, not_before: datetime | None, now: datetime,
                      settings: KrpSettings) -> bool:
    """Whether a queued request recorded `now` is published as soon as it commits: it is
    due within the publish horizon (later ones wait for the sweep)."""
    return not_before is None or (
        (not_before - now).total_seconds() <= settings.publish_horizon_seconds)


@inject
def runs_in_process(celery_app: KrpCelery = Provide[CoreContainer.celery_app]) -> bool:
    """Whether a publish runs the job here and now (eager mode)."""
    return bool(celery_app.conf.task_always_eager)


@inject
def queue_of(request_id, *, settings: KrpSettings = Provide[CoreContainer.settings],
             ) -> str | None:
    """The queue of the request's environment (None if the request or its environment is
    gone): where a retry of its job must go, whatever queue the broker redelivered it on."""
    environment = (ResourceRequest.objects.filter(pk=request_id)
                   .values_list("environment", flat=True).first())
    try:
        return settings.environment(environment).queue if environment else None
    except KeyError:
        return None


def due_at(request: ResourceRequest) -> datetime | None:
    """When the request may run: the later of not_before and its next retry."""
    moments = [moment for moment in (request.not_before, request.next_attempt_at) if moment]
    return max(moments) if moments else None


@inject
def publish(
    request_id,
    *,
    settings: KrpSettings = Provide[CoreContainer.settings],
    celery_app: KrpCelery = Provide[CoreContainer.celery_app],
) -> bool:
    """Publish a queued request's job now, with a countdown to when it is due.

    A request due later than the publish horizon is left for the sweep to publish when it
    comes near: a countdown longer than the broker's visibility timeout would run twice.
    Returns whether a message went out.
    """
    request = ResourceRequest.objects.filter(pk=request_id, status=RequestStatus.QUEUED).first()
    if request is None:
        return False
    return publish_request(request, settings=settings, celery_app=celery_app)


@inject
def publish_request(
    request: ResourceRequest,
    *,
    settings: KrpSettings = Provide[CoreContainer.settings],
    celery_app: KrpCelery = Provide[CoreContainer.celery_app],
    stamped: datetime | None = None,
) -> bool:
    """Publish the job of a queued request in hand, as publish() does. `stamped`: the
    published_at its row already holds (recorded with it), kept if the message goes out
    and taken back if not; otherwise published_at is written once it has gone out."""
    sent = _send(request, settings=settings, celery_app=celery_app)
    rows = ResourceRequest.objects.filter(pk=request.pk, task_id=request.task_id)
    if stamped is None and sent:
        rows.update(published_at=timezone.now())
    elif stamped is not None and not sent:
        rows.filter(published_at=stamped).update(published_at=None)
    return sent


def _send(request: ResourceRequest, *, settings: KrpSettings, celery_app: KrpCelery) -> bool:
    try:
        queue = settings.environment(request.environment).queue
    except KeyError:
        _fail_unknown_environment(request)
        return False
    due = due_at(request)
    countdown = max(0.0, (due - timezone.now()).total_seconds()) if due else 0.0
    if countdown > settings.publish_horizon_seconds:
        return False
    try:
        celery_app.provision_task(request.resource_type).apply_async(
            kwargs={"request_id": str(request.pk)},
            task_id=request.task_id,
            queue=queue,
            countdown=countdown or None,
            expires=request.deadline,
        )
    except Exception as exc:  # noqa: BLE001 - the broker's errors vary by transport
        logger.warning(
            "could not publish request %s (%s: %s); the sweep will publish it again",
            request.pk, type(exc).__name__, exc,
        )
        return False
    return True


def _fail_unknown_environment(request: ResourceRequest) -> None:
    why = (f"environment {request.environment!r} is no longer in KRP_ENVIRONMENTS; "
           "nothing can carry this request out")
    transitions.refuse(request.pk, actor="sweep", message=why, error_code="unknown_environment",
                       error_message=why, quietly=True)
