"""Health: whether this process's database and broker answer, and whether an environment's
credentials resolve to its account. Used by /readyz, `krp check` and the
krp.environment_check task; each status is a string and never raises."""

from __future__ import annotations

from typing import Any

from celery import Celery
from dependency_injector.wiring import Provide, inject
from django.db import connection

from containers.core import CoreContainer
from provisioning.budget import CallBudget
from provisioning.cloud import IdentityGuard
from provisioning.runtime import ProcessRuntime

# What broker_status says when no broker is used; readiness counts it as healthy.
BROKER_NOT_USED = "not used (eager mode)"


@inject
def environment_check(
    *,
    environment: str,
    guard: IdentityGuard = Provide[CoreContainer.identity_guard],
    runtime: ProcessRuntime = Provide[CoreContainer.runtime],
) -> dict[str, Any]:
    """Confirm this process's credentials resolve to the environment's account, and report
    which process (its settings fingerprint, and where its container was built) did the
    check."""
    identity = guard.confirm(environment)
    return {"environment": environment, "identity": identity, "worker": runtime.describe()}


def database_status() -> str:
    """'ok', or 'down: <why>' (never raises)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"down: {type(exc).__name__}"


@inject
def broker_status(celery_app: Celery = Provide[CoreContainer.celery_app]) -> str:
    """'ok', 'not used (eager mode)', or 'down: <why>' (never raises)."""
    if celery_app.conf.task_always_eager:
        return BROKER_NOT_USED
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"down: {type(exc).__name__}"


@inject
def call_budget_status(budget: CallBudget = Provide[CoreContainer.call_budget]) -> dict[str, Any]:
    """Each environment's AWS call budget and where it is kept; `warning` says when the
    budget is not shared (each process keeps its own) or its Redis does not answer."""
    status = budget.status()
    warning = ""
    if status == "per process":
        warning = ("the AWS call budget is per process: N workers may send N times each "
                   "environment's api_calls_per_second (set KRP_CACHE_URL to a Redis)")
    elif status != "ok":
        warning = (f"the AWS call budget's Redis is {status}: each process keeps its own "
                   "budget until it answers")
    return {"status": status, "warning": warning, "environments": budget.describe()}
