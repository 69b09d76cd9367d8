"""What the rest of KRP may listen to, without the state machine knowing who listens.

`request_moved` is sent once for each audit event a request gets (its first status, each
transition, a plan recorded while it waits), after the transaction that wrote it commits:
a change that rolled back is never announced. Notifications and metrics listen to it.
Receivers run in the process that made the change (web, worker or eager); one that
fails is logged and does not undo or stop anything.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent with: request (the ResourceRequest as the change left it), from_status ("" for a
# request just recorded), to_status, actor, message.
request_moved = Signal()


def announce_on_commit(request: Any, *, from_status: str, to_status: str, actor: str,
                       message: str) -> None:
    """Send `request_moved` for this change once the current transaction commits (at once
    outside one)."""
    def send() -> None:
        for receiver, result in request_moved.send_robust(
                sender=type(request), request=request, from_status=str(from_status),
                to_status=str(to_status), actor=actor, message=message):
            if isinstance(result, Exception):
                logger.error("request_moved receiver %s failed for request %s: %r",
                             getattr(receiver, "__qualname__", receiver), request.pk, result)

    transaction.on_commit(send)
