"""ProcessRuntime: which process (and which container) is doing the work."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from containers.settings import KrpSettings

# Where a container was built: Django's AppConfig.ready() (web, manage.py, eager mode),
# Celery's worker_init (a worker's main process, which runs the jobs with -P solo or
# threads), worker_process_init (each prefork pool child), or a test building its own.
ContainerOrigin = Literal["django", "worker_init", "worker_process_init", "test"]


@dataclass(frozen=True)
class ProcessRuntime:
    """Built once per container; a container inherited across a fork would give itself away
    by a pid that is not the current process's."""

    pid: int
    hostname: str
    fingerprint: str
    started_at: datetime
    container_origin: ContainerOrigin

    @classmethod
    def current(cls, settings: KrpSettings, origin: ContainerOrigin) -> ProcessRuntime:
        return cls(
            pid=os.getpid(),
            hostname=socket.gethostname(),
            fingerprint=settings.fingerprint,
            started_at=datetime.now(UTC),
            container_origin=origin,
        )

    @property
    def worker_id(self) -> str:
        return f"{self.hostname}:{self.pid}"

    def describe(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "hostname": self.hostname,
            "fingerprint": self.fingerprint,
            "started_at": self.started_at.isoformat(),
            "container_origin": self.container_origin,
        }
