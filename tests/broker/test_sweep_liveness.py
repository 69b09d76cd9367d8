"""The sweep is a liveness dependency: with beat running but no worker on the control
queue, beat sends the sweep and nothing runs it, so /readyz answers 503 naming it; a
worker started on the control queue runs it and readiness is ok again.

Beat and the worker use a control queue of their own (KRP_CONTROL_QUEUE), so no worker
of another test that consumes `krp` can run this test's sweep, and a sweep interval of
one second. The test process reads readiness as the web would, with the same settings.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from dependency_injector import providers
from django.utils import timezone
from django_celery_results.models import TaskResult
from rest_framework.test import APIClient

from provisioning.models import PeriodicRun
from tests.fixtures.processes import start_process

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

CONTROL_QUEUE = "krp-liveness"
ENV = {"KRP_CONTROL_QUEUE": CONTROL_QUEUE, "KRP_SWEEP_INTERVAL_SECONDS": "1",
       "KRP_RECONCILE_INTERVAL_SECONDS": "0"}


@pytest.fixture
def web_of_this_deployment(container, krp_settings):
    """This process, as the web of that deployment: up for a day, its sweep last ran an
    hour ago."""
    container.settings.override(providers.Object(krp_settings.model_copy(update={
        "control_queue": CONTROL_QUEUE, "sweep_interval_seconds": 1})))
    container.runtime.override(providers.Object(
        replace(container.runtime(), started_at=timezone.now() - timedelta(days=1))))
    PeriodicRun.objects.create(name="sweep", last_run_at=timezone.now() - timedelta(hours=1))


@pytest.fixture
def beat(tmp_path, broker):
    process = start_process(
        [sys.executable,
         "-m", "celery", "-A", "krp_project", "beat", "-l", "INFO",
         "-s", str(tmp_path / "beat-schedule")],
        tmp_path / "beat.log", env=ENV,
    )
    yield process
    process.stop()


def sweeps_sent(beat) -> int:
    return beat.log().count("Sending due task krp-sweep")


def readyz() -> tuple[int, dict]:
    response = APIClient().get("/readyz")
    return response.status_code, response.json()


def test_readiness_fails_while_no_worker_consumes_the_control_queue_and_recovers_with_one(
    web_of_this_deployment, beat, start_worker
):
    beat.wait_for("beat: Starting")
    deadline = time.monotonic() + 30
    while sweeps_sent(beat) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sweeps_sent(beat) >= 3, beat.log()

    status, body = readyz()
    assert status == 503, body
    assert body["checks"]["sweep"]["status"].startswith("overdue: the sweep last ran 3")
    assert f"is a worker consuming `-Q {CONTROL_QUEUE}`" in body["checks"]["sweep"]["status"]

    control = start_worker(CONTROL_QUEUE, name="control", env=ENV)
    control.wait_for("ready.")
    deadline = time.monotonic() + 60
    while readyz()[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.5)

    status, body = readyz()
    assert status == 200, (body, control.log())
    assert body["checks"]["sweep"]["age_seconds"] <= 3
    ran_by = set(TaskResult.objects.filter(task_name="krp.sweep", status="SUCCESS")
                 .values_list("worker", flat=True))
    assert ran_by and all(worker.startswith("control@") for worker in ran_by), ran_by
