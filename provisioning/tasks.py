"""Celery tasks. Thin: check the settings fingerprint, then call into the container's objects.

Every KRP task message carries its producer's settings fingerprint in a header; a worker
whose own fingerprint differs refuses the job before it touches AWS or the database.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from dependency_injector.wiring import Provide, inject

from containers.core import CoreContainer
from provisioning.cloud import IdentityGuard
from provisioning.errors import SettingsMismatch
from provisioning.runtime import ProcessRuntime

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
@inject
def environment_check(
    self: KrpTask,
    environment: str,
    guard: IdentityGuard = Provide[CoreContainer.identity_guard],
    runtime: ProcessRuntime = Provide[CoreContainer.runtime],
) -> dict[str, Any]:
    """Run by a worker of `environment`'s queue: confirm its credentials resolve to the
    environment's account and report which process and settings did the check."""
    identity = guard.confirm(environment)
    return {"environment": environment, "identity": identity, "worker": runtime.describe()}
