"""ProcessRuntime: which process (and which container) is doing the work."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from containers.settings import KrpSettings


@dataclass(frozen=True)
class ProcessRuntime:
    """Built once per container; a container inherited across a fork would give itself away
    by a pid that is not the current process's."""

    pid: int
    hostname: str
    fingerprint: str
    started_at: datetime

    @classmethod
    def current(cls, settings: KrpSettings) -> ProcessRuntime:
        return cls(
            pid=os.getpid(),
            hostname=socket.gethostname(),
            fingerprint=settings.fingerprint,
            started_at=datetime.now(UTC),
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
        }
