"""Fenced clients: a run's AWS clients check its fencing token before every write.

A lease alone is not a fence: a worker paused past its lease (a frozen VM, a long GC,
SIGSTOP) wakes and carries on writing after another worker took the request over. So every
client a run's ProvisionContext hands out is wrapped here: before each mutating call it
asks the run's fence (services.lease.Fence) whether the run still holds the request under
the generation it started with; a run that does not stops with LeaseLost before the call
is sent. Read-only calls go straight through: a stale run may look, never write.

The check runs in the caller's thread just before botocore builds the call, so it narrows
the window to the moment between the check and the send (AWS itself cannot check a token).
A wrapper rather than a botocore event hook: the boto3 clients are shared by every run of
a process (and by reconcile, which holds no lease), while a fence belongs to one run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# AWS's naming convention for operations that change nothing; everything else writes.
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Head")
READ_ONLY_OPERATIONS = frozenset({"GetCallerIdentity"})


def is_read_only(operation: str) -> bool:
    """Whether an AWS operation (its API name, e.g. 'PutBucketTagging') only reads."""
    return operation in READ_ONLY_OPERATIONS or operation.startswith(READ_ONLY_PREFIXES)


class FencedClient:
    """A boto3 client whose mutating operations first call `fence(operation)`.

    Everything else (meta, exceptions, paginators, waiters, read-only calls) is the client's
    own; paginators and waiters only describe and list.
    """

    def __init__(self, client: Any, fence: Callable[[str], None]):
        self._client = client
        self._fence = fence

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        operation = self._client.meta.method_to_api_mapping.get(name)
        if operation is None or is_read_only(operation):
            return attribute
        fence = self._fence

        def fenced_call(*args: Any, **kwargs: Any) -> Any:
            fence(operation)
            return attribute(*args, **kwargs)

        fenced_call.__name__ = name
        return fenced_call
