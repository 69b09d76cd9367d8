"""Dry runs: what a request or a stack would change, recording nothing but an audit row.

A request's dry run passes every check a submission meets, then plans: a create needs no
look at the cloud, so the web process says what it would make; an update or a delete asks
a worker of the environment (which holds its credentials) to describe the resource, and
waits for it up to KRP_DRY_RUN_WAIT_SECONDS. A stack's dry run checks the whole document
and says what each member would make, in the order the members would run.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from dependency_injector.wiring import Provide, inject
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning import selectors
from provisioning.errors import KrpError
from provisioning.models import DryRun, RequestAction, ResourceRequest
from provisioning.resources import REGISTRY
from provisioning.services import plans
from provisioning.services.dispatch import DRY_PLAN_TASK
from provisioning.services.stack_document import stack_validate
from provisioning.services.submission import submission_check_text, submission_validate


class NoWorkerAnswered(KrpError):
    """No worker of the environment planned the dry run in time."""

    code = "no_worker"


@inject
def request_dry_run(
    *,
    user: AbstractBaseUser,
    environment: Any,
    resource_type: Any,
    name: Any,
    spec: Any = None,
    action: Any = RequestAction.CREATE,
    tags: Any = None,
    team: Any = None,
    not_before: Any = None,
    deadline: Any = None,
    refused: dict[str, list[str]] | None = None,
    physical_name: Any = None,
    ttl: Any = None,
    expires_at: Any = None,
    settings: KrpSettings = Provide[CoreContainer.settings],
    celery_app=Provide[CoreContainer.celery_app],
) -> dict[str, Any]:
    """Check a request as a submission would be checked and answer with its plan."""
    submission_check_text(environment=environment, resource_type=resource_type, name=name,
                          spec=spec, tags=tags, team=team)
    context = selectors.submission_context(user=user, idempotency_key=None,
                                           environment=environment,
                                           resource_type=resource_type, name=name)
    with transaction.atomic():  # validation locks what it decides on; nothing is written
        submission = submission_validate(
            user=user, environment=environment, resource_type=resource_type, name=name,
            spec=spec, action=action, tags=tags, team=team, not_before=not_before,
            deadline=deadline, idempotency_key=None, body_hash="", settings=settings,
            context=context, refused=refused, physical_name=physical_name, ttl=ttl,
            expires_at=expires_at)
    kind = REGISTRY[submission.resource_type]
    if submission.action == RequestAction.CREATE:
        request = ResourceRequest(
            environment=submission.environment, resource_type=submission.resource_type,
            name=submission.name, action=submission.action, spec=submission.spec,
            tags=submission.tags, physical_name=submission.physical_name)
        plan = plans.plan_of(request, kind, kind.parse_spec(submission.spec), None)
    else:
        job = celery_app.signature(DRY_PLAN_TASK, kwargs={
            "resource_id": str(submission.target.pk) if submission.target else None,
            "action": submission.action, "spec": submission.spec, "tags": submission.tags,
            "environment": submission.environment, "resource_type": submission.resource_type,
            "name": submission.name, "physical_name": submission.physical_name,
            "team": submission.team.name,
        }, queue=settings.environment(submission.environment).queue).apply_async()
        try:
            plan = job.get(timeout=settings.dry_run_wait_seconds, propagate=True)
        except CeleryTimeout:
            raise NoWorkerAnswered(
                f"no worker of {submission.environment} planned it within "
                f"{settings.dry_run_wait_seconds} s (KRP_DRY_RUN_WAIT_SECONDS); is one "
                f"running on queue {settings.environment(submission.environment).queue}?"
            ) from None
    DryRun.objects.create(user=user, team=submission.team, environment=submission.environment,
                          resource_type=submission.resource_type, name=submission.name,
                          action=submission.action, lines=plan["lines"])
    return {"dry_run": True, "environment": submission.environment,
            "resource_type": submission.resource_type, "name": submission.name,
            "action": submission.action, "team": submission.team.name,
            "plan": plans.public(plan)}


@inject
def stack_dry_run(*, user: AbstractBaseUser, document: Any,
                  settings: KrpSettings = Provide[CoreContainer.settings]) -> dict[str, Any]:
    """Check a stack document as a submission would be checked and answer with what each
    member would make, in the order the members would run."""
    teams = list(user.groups.order_by("name"))
    planned = stack_validate(document=document, teams=teams, settings=settings)
    members = []
    for member in planned.members:
        kind = REGISTRY[member.resource_type]
        physical = member.physical_name or (
            f"{settings.name_prefix}-{planned.environment.name}-{member.name}")
        plan = plans.creation_plan(kind, physical, member.spec, member.tags)
        members.append({"key": member.key, "resource_type": member.resource_type,
                        "name": member.name, "depends_on": list(member.depends_on),
                        "plan": plans.public(plan)})
    DryRun.objects.create(
        user=user, team=planned.team, environment=planned.environment.name,
        resource_type="stack", name=planned.name, action=RequestAction.CREATE,
        lines=[line for member in members for line in member["plan"]["lines"]])
    return {"dry_run": True, "environment": planned.environment.name, "name": planned.name,
            "team": planned.team.name, "members": members}
