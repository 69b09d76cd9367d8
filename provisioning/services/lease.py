"""A running request's lease, renewed while its worker lives, and the fence that keeps a
run that lost it from writing to the cloud."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connection
from django.utils import timezone

from provisioning.errors import KrpError, TransientCloudError
from provisioning.models import RequestStatus, ResourceRequest

logger = logging.getLogger(__name__)


class LeaseLost(KrpError):
    """This run no longer holds its request: another run took it over, or it finished.

    Neither transient nor permanent: the run stops without writing, without rolling back
    and without moving the request, which is the other run's now.
    """

    code = "lease_lost"


class LeaseKeeper:
    """Renews a running request's lease every third of its length while the job runs.

    If the process dies, renewal stops with it and the sweep takes the request back once
    the lease lapses. Renewal is conditional on the run's generation (its fencing token),
    so a run that woke after a takeover never extends the new run's lease; once renewal
    finds the lease gone, `lost` is set and the run's fence refuses every further write.
    """

    def __init__(self, request_id: Any, worker_id: str, lease_seconds: int, *,
                 generation: int | None = None):
        self._request_id = request_id
        self._worker_id = worker_id
        self._lease = lease_seconds
        self._generation = generation
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="krp-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        held = {"pk": self._request_id, "status": RequestStatus.RUNNING,
                "lease_owner": self._worker_id}
        if self._generation is not None:
            held["lease_generation"] = self._generation
        try:
            while not self._stop.wait(self._lease / 3):
                try:
                    renewed = ResourceRequest.objects.filter(**held).update(
                        lease_expires_at=timezone.now() + timedelta(seconds=self._lease))
                except DatabaseError as exc:
                    # A database blip must not end renewal: try again at the next beat.
                    logger.warning("could not renew the lease on request %s: %s",
                                   self._request_id, exc)
                    connection.close()
                    continue
                if not renewed:
                    logger.warning("lease on request %s lost", self._request_id)
                    self.lost.set()
                    return
        finally:
            connection.close()


class Fence:
    """The check a run's clients make before every mutating AWS call (see
    provisioning.fencing): the request must still be running under this worker's lease
    with the generation the run started with. Checked in the database, not in memory: a
    paused process cannot know it was paused."""

    def __init__(self, *, request_id: Any, worker_id: str, generation: int,
                 keeper: LeaseKeeper | None = None):
        self._request_id = request_id
        self._worker_id = worker_id
        self._generation = generation
        self._keeper = keeper

    def __call__(self, operation: str) -> None:
        """Return if this run may send `operation`; raise LeaseLost if it may not."""
        if self._keeper is not None and self._keeper.lost.is_set():
            raise self._lost(operation)
        try:
            held = ResourceRequest.objects.filter(
                pk=self._request_id, status=RequestStatus.RUNNING,
                lease_owner=self._worker_id, lease_generation=self._generation,
            ).exists()
        except DatabaseError as exc:
            # Unconfirmed is not confirmed: write nothing, try the request again later.
            connection.close()
            raise TransientCloudError(
                f"could not confirm the lease before {operation}: {exc}", "lease_unconfirmed"
            ) from exc
        if not held:
            raise self._lost(operation)

    def _lost(self, operation: str) -> LeaseLost:
        logger.warning("request %s: generation %s on %s lost its lease; %s not sent",
                       self._request_id, self._generation, self._worker_id, operation)
        return LeaseLost(
            f"lost the lease (generation {self._generation} on {self._worker_id}) before "
            f"{operation}; another run holds the request, nothing was written"
        )
