"""When the sweep last ran, as readiness and `krp check` report it: overdue in broker mode
once it has not run for three of its intervals, with a grace for a fresh deployment (from
KRP's first migration) and for a web process that just started."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from dependency_injector import providers
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from rest_framework.test import APIClient

from provisioning.health import sweep_status
from provisioning.models import PeriodicRun
from provisioning.runtime import ProcessRuntime
from provisioning.services import sweep
from tests.cli import krp_outcome

pytestmark = pytest.mark.django_db

INTERVAL = 10


@pytest.fixture
def settings_every(krp_settings):
    def make(interval: int = INTERVAL, mode: str = "broker"):
        return krp_settings.model_copy(update={"sweep_interval_seconds": interval,
                                               "task_mode": mode})
    return make


@pytest.fixture
def first_migrated() -> datetime:
    return (MigrationRecorder.Migration.objects.filter(app="provisioning")
            .order_by("applied").values_list("applied", flat=True).first())


def runtime_started(at: datetime) -> ProcessRuntime:
    return ProcessRuntime(pid=1, hostname="web", fingerprint="f", started_at=at,
                          container_origin="test")


def last_ran(at: datetime) -> None:
    PeriodicRun.objects.update_or_create(name="sweep", defaults={"last_run_at": at})


def status_at(now: datetime, settings, *, started: datetime | None = None) -> dict:
    return sweep_status(now=now, settings=settings,
                        runtime=runtime_started(started or now - timedelta(days=1)),
                        grace_from_process_start=started is not None)


def test_a_sweep_that_ran_within_three_intervals_is_ok(settings_every):
    now = timezone.now() + timedelta(days=1)
    last_ran(now - timedelta(seconds=3 * INTERVAL))

    status = status_at(now, settings_every())

    assert status == {"last_run": (now - timedelta(seconds=3 * INTERVAL)).isoformat(),
                      "age_seconds": 3 * INTERVAL, "interval_seconds": INTERVAL,
                      "ok": True, "status": "ok"}


def test_a_sweep_that_has_not_run_for_three_intervals_is_overdue_naming_the_queue(
    settings_every
):
    now = timezone.now() + timedelta(days=1)
    last_ran(now - timedelta(seconds=3 * INTERVAL + 1))

    status = status_at(now, settings_every())

    assert (status["ok"], status["age_seconds"]) == (False, 3 * INTERVAL + 1)
    assert status["status"] == (
        f"overdue: the sweep last ran {3 * INTERVAL + 1} s ago (beat publishes it every "
        f"{INTERVAL} s to the control queue 'krp'); is a worker consuming `-Q krp`, and is "
        "beat running?")


def test_a_sweep_that_never_ran_has_three_intervals_from_krps_first_migration(
    settings_every, first_migrated
):
    PeriodicRun.objects.all().delete()
    in_grace = status_at(first_migrated + timedelta(seconds=3 * INTERVAL), settings_every())
    after = status_at(first_migrated + timedelta(seconds=3 * INTERVAL + 1), settings_every())

    assert (in_grace["ok"], in_grace["last_run"], in_grace["age_seconds"]) == (True, None, None)
    assert after["ok"] is False
    assert after["status"].startswith("overdue: the sweep has never run")


def test_the_web_process_has_three_intervals_from_its_own_start(settings_every):
    now = timezone.now() + timedelta(days=1)
    last_ran(now - timedelta(hours=1))

    just_started = status_at(now, settings_every(), started=now - timedelta(seconds=INTERVAL))
    long_running = status_at(now, settings_every(),
                             started=now - timedelta(seconds=3 * INTERVAL + 1))

    assert (just_started["ok"], long_running["ok"]) == (True, False)


def test_in_eager_mode_there_is_no_beat_and_the_sweep_is_never_overdue(settings_every):
    now = timezone.now() + timedelta(days=1)
    last_ran(now - timedelta(hours=1))

    status = status_at(now, settings_every(mode="eager"))

    assert status["ok"] is True
    assert status["status"].startswith("not scheduled (eager mode)")


def test_a_sweep_records_when_it_ran():
    before = timezone.now()

    sweep()

    assert PeriodicRun.objects.get(name="sweep").last_run_at >= before


@pytest.fixture
def overdue(container, settings_every, first_migrated):
    """This process is the web of a broker-mode deployment with a 1 s sweep interval, up
    for a day, whose sweep last ran an hour ago."""
    # A fresh deployment's grace runs from KRP's first migration: let it pass.
    time.sleep(max(0.0, 3.5 - (timezone.now() - first_migrated).total_seconds()))
    container.settings.override(providers.Object(settings_every(interval=1)))
    container.runtime.override(providers.Object(
        replace(container.runtime(), started_at=timezone.now() - timedelta(days=1))))
    last_ran(timezone.now() - timedelta(hours=1))


def test_readyz_is_503_naming_the_sweep_when_it_is_overdue(overdue):
    response = APIClient().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert (body["checks"]["database"], body["checks"]["broker"]) == ("ok", "ok")
    assert body["checks"]["sweep"]["ok"] is False
    assert body["checks"]["sweep"]["status"].startswith("overdue: the sweep last ran 360")


def test_readyz_is_ok_again_once_the_sweep_runs(overdue):
    sweep()

    response = APIClient().get("/readyz")

    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["sweep"]["age_seconds"] == 0


@pytest.mark.usefixtures("sandbox")
def test_krp_check_fails_and_prints_the_sweep_line_when_it_is_overdue(overdue):
    ran = krp_outcome("check")

    assert ran.error == "check failed: see above"
    sweep_line = next(line for line in ran.stdout.splitlines() if line.startswith("sweep: "))
    assert sweep_line.startswith("sweep: overdue: the sweep last ran 360")
    assert sweep_line.endswith(", every 1 s)")
