"""Checks a worker runs on request: is this environment's identity what settings say?"""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject

from containers.core import CoreContainer
from provisioning.cloud import IdentityGuard
from provisioning.runtime import ProcessRuntime


@inject
def environment_check(
    *,
    environment: str,
    guard: IdentityGuard = Provide[CoreContainer.identity_guard],
    runtime: ProcessRuntime = Provide[CoreContainer.runtime],
) -> dict[str, Any]:
    """Confirm this process's credentials resolve to the environment's account, and report
    which process (and settings fingerprint) did the check."""
    identity = guard.confirm(environment)
    return {"environment": environment, "identity": identity, "worker": runtime.describe()}


def database_status() -> str:
    """'ok', or 'down: <why>' (never raises)."""
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"down: {type(exc).__name__}"


def broker_status() -> str:
    """'ok', 'not used (eager mode)', or 'down: <why>' (never raises)."""
    from krp_project.celery import app

    if app.conf.task_always_eager:
        return "not used (eager mode)"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"down: {type(exc).__name__}"
