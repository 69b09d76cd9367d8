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
