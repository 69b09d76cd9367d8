"""What /metrics reads from the database when it is scraped: how many requests are in
flight, how long the oldest due request has waited in each environment's queue, and when
the sweep last ran. A few indexed queries per scrape; a database that does not answer
gives `krp_database_up 0` and nothing else from here, never a failed scrape."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count, Min, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from containers.settings import KrpSettings
from provisioning.models import IN_FLIGHT_STATUSES, RequestStatus, ResourceRequest

logger = logging.getLogger(__name__)

# Every gauge read here: name -> (help, labels).
GAUGES = {
    "krp_database_up": ("Whether /metrics could read the database.", ()),
    "krp_requests_in_flight": ("Requests waiting for approval, queued or running.",
                               ("environment", "status")),
    "krp_queue_oldest_age_seconds": (
        "How long the oldest due queued request of each environment has waited since it "
        "was due (0 when none waits).", ("environment",)),
    "krp_sweep_overdue": (
        "1 when the sweep has not run for 3 of its intervals (as /readyz says); always 0 in "
        "eager mode, where no beat runs it.", ()),
    "krp_sweep_last_run_age_seconds": ("Seconds since the sweep last finished a run.", ()),
}


def _gauge(name: str) -> GaugeMetricFamily:
    documentation, labels = GAUGES[name]
    return GaugeMetricFamily(name, documentation, labels=labels)


class DatabaseCollector(Collector):
    """Gauges computed from the database at each scrape (the web process's own)."""

    def __init__(self, settings: KrpSettings):
        self._settings = settings

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Every family this collector may give (some only once there is data)."""
        for name in GAUGES:
            yield _gauge(name)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = _gauge("krp_database_up")
        try:
            families = [self._in_flight(), self._oldest_queued(), *self._sweep()]
        except DatabaseError as exc:
            logger.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _in_flight(self) -> GaugeMetricFamily:
        family = _gauge("krp_requests_in_flight")
        counts = {(env, status): 0 for env in self._settings.environment_names
                  for status in sorted(IN_FLIGHT_STATUSES)}
        rows = (ResourceRequest.objects.filter(status__in=sorted(IN_FLIGHT_STATUSES))
                .order_by().values_list("environment", "status").annotate(count=Count("pk")))
        for environment, status, count in rows:
            counts[(environment, status)] = count
        for (environment, status), count in sorted(counts.items()):
            family.add_metric([environment, status], count)
        return family

    def _oldest_queued(self) -> GaugeMetricFamily:
        """The age of the oldest queued request that is due (its not_before and retry time
        passed): what grows when nothing consumes an environment's queue. 0 when none."""
        family = _gauge("krp_queue_oldest_age_seconds")
        now = timezone.now()
        due_since = Greatest(Coalesce("queued_at", "created_at"),
                             Coalesce("not_before", "created_at"),
                             Coalesce("next_attempt_at", "created_at"))
        rows = (ResourceRequest.objects.filter(status=RequestStatus.QUEUED)
                .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                .order_by().values_list("environment")
                .annotate(oldest=Min(due_since)))
        oldest = dict(rows)
        for environment in self._settings.environment_names:
            since = oldest.get(environment)
            family.add_metric([environment], max((now - since).total_seconds(), 0.0)
                              if since is not None else 0.0)
        return family

    def _sweep(self) -> list[GaugeMetricFamily]:
        from provisioning.health import sweep_status

        status = sweep_status(grace_from_process_start=True)
        if status["status"].startswith("unknown"):
            raise DatabaseError(status["status"])
        overdue = _gauge("krp_sweep_overdue")
        overdue.add_metric([], 0 if status["ok"] else 1)
        families = [overdue]
        if status["age_seconds"] is not None:
            age = _gauge("krp_sweep_last_run_age_seconds")
            age.add_metric([], status["age_seconds"])
            families.append(age)
        return families


