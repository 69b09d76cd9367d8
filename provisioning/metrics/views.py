"""/metrics: every KRP process's metrics, added up, in Prometheus' text format.

A plain Django view (prometheus_client's own PrometheusDjangoView), outside the API: no
throttle, no session needed. It answers to `Authorization: Bearer <KRP_METRICS_TOKEN>`
(compared in constant time) and to a signed-in staff user; without KRP_METRICS_TOKEN, only
to the latter. A refusal says what to send, never what the token is.
"""

from __future__ import annotations

import hmac
import os
from functools import cache

from dependency_injector.wiring import Provide, inject
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry
from prometheus_client.django import PrometheusDjangoView
from prometheus_client.multiprocess import MultiProcessCollector

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.metrics.database import DatabaseCollector
from provisioning.metrics.process import ENVIRON_VARIABLE

REALM = 'Bearer realm="krp-metrics"'


@cache
def metrics_registry(settings: KrpSettings) -> CollectorRegistry:
    """What /metrics shows: the files of every process in the metrics directory, and the
    gauges read from the database at each scrape."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=os.environ[ENVIRON_VARIABLE])
    registry.register(DatabaseCollector(settings))
    return registry


@inject
def refusal(request: HttpRequest,
            settings: KrpSettings = Provide[CoreContainer.settings]) -> HttpResponse | None:
    """None if `request` may read the metrics, else the 401 that says how to."""
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return None
    token = settings.metrics_token
    if token is None:
        why = ("/metrics answers to a signed-in staff user only: KRP_METRICS_TOKEN is not "
               "set. Set it, and scrape with the header Authorization: Bearer <token>.\n")
    else:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode()):
            return None
        why = ("/metrics needs the header Authorization: Bearer <KRP_METRICS_TOKEN>; "
               "none or another was sent.\n")
    return HttpResponse(why, status=401, content_type="text/plain; charset=utf-8",
                        headers={"WWW-Authenticate": REALM})


class MetricsView(PrometheusDjangoView):
    """prometheus_client's Django view over KRP's registry, behind `refusal`."""

    http_method_names = ["get", "head", "options"]

    @inject
    def get(self, request: HttpRequest, *args,
            settings: KrpSettings = Provide[CoreContainer.settings], **kwargs) -> HttpResponse:
        refused = refusal(request)
        if refused is not None:
            return refused
        self.registry = metrics_registry(settings)
        return super().get(request, *args, **kwargs)
