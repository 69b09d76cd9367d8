"""A running request's lease, renewed while its worker lives."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connection
from django.utils import timezone

from provisioning.models import RequestStatus, ResourceRequest

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews a running request's lease every third of its length while the job runs.

    If the process dies, renewal stops with it and the sweep takes the request back once
    the lease lapses.
    """

    def __init__(self, request_id: Any, worker_id: str, lease_seconds: int):
        self._request_id = request_id
        self._worker_id = worker_id
        self._lease = lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="krp-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        try:
            while not self._stop.wait(self._lease / 3):
                try:
                    renewed = ResourceRequest.objects.filter(
                        pk=self._request_id, status=RequestStatus.RUNNING,
                        lease_owner=self._worker_id,
                    ).update(lease_expires_at=timezone.now() + timedelta(seconds=self._lease))
                except DatabaseError as exc:
                    # A database blip must not end renewal: try again at the next beat.
                    logger.warning("could not renew the lease on request %s: %s",
                                   self._request_id, exc)
                    connection.close()
                    continue
                if not renewed:
                    logger.warning("lease on request %s lost", self._request_id)
                    return
        finally:
            connection.close()
