"""KRP's metrics, and what the sweep, reconcile and the AWS clients record in them.

Every process records into its own files of the metrics directory (prometheus_client's
multiprocess mode, see provisioning.metrics.process); /metrics adds them up. Labels are few
and bounded (environments, resource types, actions, statuses, AWS services and error
codes), never a name or an id. docs/metrics.md describes each metric.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram, values

from provisioning.metrics.process import (
    ENVIRON_VARIABLE,
    ensure_metrics_directory,
    process_identifier,
)

if TYPE_CHECKING:
    from provisioning.models import ReconcileRun
    from provisioning.services.sweep import SweepReport

ensure_metrics_directory()
if os.environ.get(ENVIRON_VARIABLE):
    # Files named by pid and host, not pid alone: processes of several hosts (containers)
    # share the directory, and their pids repeat. Before any metric below is made.
    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)

REQUEST_LABELS = ("environment", "resource_type", "action")

# Requests --------------------------------------------------------------------------------

REQUESTS_SUBMITTED = Counter(
    "krp_requests_submitted", "Requests recorded (their first status).", REQUEST_LABELS)
REQUESTS = Counter(
    "krp_requests", "Requests that reached a terminal status, by that status (a request "
    "retried after failing counts again when it ends again).", (*REQUEST_LABELS, "status"))
REQUEST_DURATION = Histogram(
    "krp_request_duration_seconds", "From a request's submission to its terminal status.",
    (*REQUEST_LABELS, "status"),
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600))
QUEUE_WAIT = Histogram(
    "krp_request_queue_wait_seconds", "From when a queued request was due to when a worker "
    "started it.", ("environment", "resource_type"),
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))
RUN_TIME = Histogram(
    "krp_request_run_seconds", "How long one attempt ran, by where it left the request "
    "(succeeded, failed, queued for a retry, pending_approval when planned again).",
    ("environment", "resource_type", "outcome"),
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900))
ATTEMPTS = Counter(
    "krp_request_attempts", "Attempts started by workers (a takeover of a lapsed lease "
    "included).", REQUEST_LABELS)
RETRIES = Counter(
    "krp_request_retries", "Attempts that ended in a transient error and queued the "
    "request again, by the error's code.", ("environment", "resource_type", "error_code"))
FAILURES = Counter(
    "krp_request_failures", "Requests that failed, by the error's code.",
    ("environment", "resource_type", "error_code"))
LEASES_TAKEN_BACK = Counter(
    "krp_leases_taken_back", "Running requests whose worker stopped renewing the lease, by "
    "what became of them: requeued or failed by the sweep, taken_over by another worker.",
    ("environment", "outcome"))

# AWS -------------------------------------------------------------------------------------

AWS_CALLS = Counter(
    "krp_aws_calls", "AWS calls sent (each HTTP attempt, botocore's retries included).",
    ("environment", "service"))
AWS_THROTTLES = Counter(
    "krp_aws_throttles", "AWS calls answered with throttling, as botocore classifies it.",
    ("environment", "service"))
CALL_BUDGET_EXHAUSTED = Counter(
    "krp_aws_call_budget_exhausted", "Calls given up because no token of the environment's "
    "shared call budget came in time (KRP's own throttle).", ("environment",))

# The sweep and reconcile -----------------------------------------------------------------

SWEEP_RUNS = Counter("krp_sweep_runs", "Sweep runs that finished.")
SWEEP_DURATION = Histogram(
    "krp_sweep_duration_seconds", "How long a sweep run took.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
SWEEP_LAST_RUN = Gauge(
    "krp_sweep_last_run_timestamp_seconds", "When a sweep run last finished (Unix time).",
    multiprocess_mode="max")
SWEEP_FINDINGS = Counter(
    "krp_sweep_findings", "What sweep runs did, by kind: expired, reclaimed, failed (a "
    "lapsed lease with its attempts spent), published, stacks (advanced).", ("kind",))
RECONCILE_RUNS = Counter(
    "krp_reconcile_runs", "Reconcile runs that finished, by status (clean, findings, "
    "failed).", ("environment", "status"))
RECONCILE_DURATION = Histogram(
    "krp_reconcile_duration_seconds", "How long a reconcile run took.", ("environment",),
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
RECONCILE_FINDINGS = Counter(
    "krp_reconcile_findings", "Findings of reconcile runs, by kind (missing, drifted, "
    "orphan, left_behind, error).", ("environment", "kind"))


def aws_call(environment: str, service: str) -> None:
    AWS_CALLS.labels(environment, service).inc()


def aws_throttled(environment: str, service: str) -> None:
    AWS_THROTTLES.labels(environment, service).inc()


def call_budget_exhausted(environment: str) -> None:
    CALL_BUDGET_EXHAUSTED.labels(environment).inc()


def sweep_finished(report: SweepReport, seconds: float) -> None:
    """Record a finished sweep run: its duration and what it did, by kind."""
    SWEEP_RUNS.inc()
    SWEEP_DURATION.observe(seconds)
    SWEEP_LAST_RUN.set(time.time())
    for kind, items in report.as_dict().items():
        if items:
            SWEEP_FINDINGS.labels(kind).inc(len(items))


def reconcile_finished(run: ReconcileRun) -> None:
    """Record a finished reconcile run: its status, duration and findings by kind."""
    from django.db.models import Count

    RECONCILE_RUNS.labels(run.environment, run.status).inc()
    RECONCILE_DURATION.labels(run.environment).observe(run.duration_seconds or 0.0)
    for kind, count in (run.findings.order_by().values_list("kind")
                        .annotate(count=Count("pk"))):
        RECONCILE_FINDINGS.labels(run.environment, kind).inc(count)
