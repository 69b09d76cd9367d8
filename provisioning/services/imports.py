"""Bulk import: what in an environment's account could be brought under KRP.

The listing is made by a worker of the environment (credentials live there; the task
krp.import_candidates), within its call budget like every AWS call: every resource of the
type that carries no KRP tag and that the inventory does not hold, optionally only those
with a given tag. Each candidate is then imported by an ordinary import request.
"""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.cloud import CloudClients, IdentityGuard
from provisioning.models import GONE_STATUSES, Resource
from provisioning.resources import REGISTRY
from provisioning.resources.base import KRP_TAG_PREFIX

CANDIDATES_TASK = "krp.import_candidates"


@inject
def import_candidates(
    *,
    environment: str,
    resource_type: str,
    tag: str | None = None,
    settings: KrpSettings = Provide[CoreContainer.settings],
    clients: CloudClients = Provide[CoreContainer.cloud],
    guard: IdentityGuard = Provide[CoreContainer.identity_guard],
) -> list[str]:
    """Physical names of the resources of `resource_type` in the environment's account that
    no KRP tags and the inventory does not hold; with `tag` ("key=value"), only those
    carrying it."""
    guard.confirm(environment)
    kind = REGISTRY[resource_type]
    listed = kind.list_all(clients, settings.environment(environment))
    managed = set(Resource.objects.filter(environment=environment, resource_type=kind.name)
                  .exclude(status__in=sorted(GONE_STATUSES))
                  .values_list("physical_name", flat=True))
    key, _, value = (tag or "").partition("=")
    return sorted(
        name for name, tags in listed.items()
        if name not in managed and not any(k.startswith(KRP_TAG_PREFIX) for k in tags)
        and (not tag or tags.get(key) == value)
    )
