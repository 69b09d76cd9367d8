"""Health: whether this process's database and broker answer, whether the sweep runs, and
whether an environment's credentials resolve to its account. Used by /readyz, `krp check`
and the krp.environment_check task; none of the checks raises."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from dependency_injector.wiring import Provide, inject
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.budget import CallBudget
from provisioning.cloud import IdentityGuard
from provisioning.models import PeriodicRun
from provisioning.runtime import ProcessRuntime
from provisioning.services.sweep import SWEEP

# What broker_status says when no broker is used; readiness counts it as healthy.
BROKER_NOT_USED = "not used (eager mode)"
# The sweep is overdue once it has not run for this many of its intervals.
SWEEP_OVERDUE_INTERVALS = 3


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


@inject
def sweep_status(
    *,
    grace_from_process_start: bool = False,
    now: datetime | None = None,
    settings: KrpSettings = Provide[CoreContainer.settings],
    runtime: ProcessRuntime = Provide[CoreContainer.runtime],
) -> dict[str, Any]:
    """When the sweep last ran, and whether that is recent enough (`ok`).

    In broker mode beat publishes the sweep to the control queue every interval; if it has
    not run for SWEEP_OVERDUE_INTERVALS intervals, nothing consumes that queue (or beat is
    not running) and `ok` is False. A sweep that never ran is measured from KRP's first
    migration, and with `grace_from_process_start` (the web process) from this process's
    start as well, so a fresh deployment or a restart after a pause is not failed before
    beat's first run. In eager mode there is no beat: `ok` stays True and `status` says so.
    """
    now = now or timezone.now()
    interval = settings.sweep_interval_seconds
    entry: dict[str, Any] = {"last_run": None, "age_seconds": None,
                             "interval_seconds": interval, "ok": True, "status": "ok"}
    try:
        last_run = (PeriodicRun.objects.filter(name=SWEEP)
                    .values_list("last_run_at", flat=True).first())
        first_migrated = (MigrationRecorder.Migration.objects.filter(app="provisioning")
                          .order_by("applied").values_list("applied", flat=True).first())
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {**entry, "ok": False, "status": f"unknown: {type(exc).__name__}"}
    if last_run is not None:
        entry.update(last_run=last_run.isoformat(),
                     age_seconds=max(0, int((now - last_run).total_seconds())))
    if settings.task_mode == "eager":
        entry["status"] = ("not scheduled (eager mode): no beat runs it; `manage.py krp "
                           "sweep` runs it by hand")
        return entry
    since = [moment for moment in (last_run, first_migrated) if moment is not None]
    if grace_from_process_start:
        since.append(runtime.started_at)
    limit = timedelta(seconds=SWEEP_OVERDUE_INTERVALS * interval)
    if not since or now - max(since) > limit:
        when = (f"last ran {entry['age_seconds']} s ago" if last_run is not None
                else "has never run")
        entry.update(ok=False, status=(
            f"overdue: the sweep {when} (beat publishes it every {interval} s to the "
            f"control queue {settings.control_queue!r}); is a worker consuming "
            f"`-Q {settings.control_queue}`, and is beat running?"))
    return entry
