"""A request's moves are counted and timed in the process that makes them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.services import sweep
from provisioning.services.transitions import transition
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import carried_out, submit
from tests.metrics.conftest import local

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

BUCKET = {"environment": "alpha", "resource_type": "s3_bucket"}
CREATE = {**BUCKET, "action": "create"}


def test_a_request_carried_out_counts_once_as_succeeded_with_its_times(
        requester, django_capture_on_commit_callbacks):
    request = submit(requester, unique_name("counted"))
    before = {
        "succeeded": local("krp_requests_total", **CREATE, status="succeeded"),
        "duration": local("krp_request_duration_seconds_count", **CREATE, status="succeeded"),
        "wait": local("krp_request_queue_wait_seconds_count", **BUCKET),
        "run": local("krp_request_run_seconds_count", **BUCKET, outcome="succeeded"),
        "attempts": local("krp_request_attempts_total", **CREATE),
        "failed": local("krp_requests_total", **CREATE, status="failed"),
    }

    # The moves are announced once they commit: here, as the test's transaction would.
    with django_capture_on_commit_callbacks(execute=True):
        carried_out(request)

    after = {
        "succeeded": local("krp_requests_total", **CREATE, status="succeeded"),
        "duration": local("krp_request_duration_seconds_count", **CREATE, status="succeeded"),
        "wait": local("krp_request_queue_wait_seconds_count", **BUCKET),
        "run": local("krp_request_run_seconds_count", **BUCKET, outcome="succeeded"),
        "attempts": local("krp_request_attempts_total", **CREATE),
        "failed": local("krp_requests_total", **CREATE, status="failed"),
    }
    assert {key: after[key] - before[key] for key in before} == {
        "succeeded": 1, "duration": 1, "wait": 1, "run": 1, "attempts": 1, "failed": 0}


def test_a_lease_the_sweep_takes_back_is_counted_with_the_sweep_run(
        requester, broker, django_capture_on_commit_callbacks):
    request = submit(requester, unique_name("lapsed"))
    transition(request.pk, from_statuses=["queued"], to="running", actor="worker",
               attempts=1, lease_owner="host:4242",
               lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken_back = local("krp_leases_taken_back_total", environment="alpha", outcome="requeued")
    retries = local("krp_request_retries_total", **BUCKET, error_code="unknown")
    runs = local("krp_sweep_runs_total")
    reclaimed = local("krp_sweep_findings_total", kind="reclaimed")
    swept_at = timezone.now().timestamp()

    with django_capture_on_commit_callbacks(execute=True):
        report = sweep()

    assert str(request.pk) in report.reclaimed
    assert local("krp_leases_taken_back_total", environment="alpha",
                 outcome="requeued") - taken_back == 1
    # Taken back, not retried: the run did not end in an error of its own.
    assert local("krp_request_retries_total", **BUCKET, error_code="unknown") == retries
    assert local("krp_sweep_runs_total") - runs == 1
    assert local("krp_sweep_findings_total", kind="reclaimed") - reclaimed == len(
        report.reclaimed)
    assert local("krp_sweep_last_run_timestamp_seconds") >= swept_at
