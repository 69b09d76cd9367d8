"""A process with bad settings exits non-zero before serving, saying which variable is wrong."""

import json
import os
import subprocess
import sys

import pytest

from tests.fixtures.processes import ROOT, celery_worker, manage

BAD_ENVIRONMENTS = json.dumps({"alpha": {"account_id": "1111", "region": "ap-northeast-2"}})


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "krp_project.settings", **env}
    return subprocess.run(args, cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(
    "args",
    [manage("check"), manage("runserver", "--noreload", "127.0.0.1:0"),
     celery_worker("alpha", name="bad")],
    ids=["manage-check", "runserver", "celery-worker"],
)
def test_bad_environments_stop_the_process_with_a_message_naming_the_variable(args):
    finished = run(args, KRP_ENVIRONMENTS=BAD_ENVIRONMENTS)

    assert finished.returncode != 0
    assert "KRP cannot start: KRP_ENVIRONMENTS: alpha.account_id: '1111' is not valid " \
        "(expected 12 digits)" in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize(
    "args", [manage("check"), celery_worker("alpha", name="bad")],
    ids=["manage-check", "celery-worker"],
)
def test_a_rate_limit_for_an_unknown_resource_type_stops_the_process_naming_the_variable(args):
    finished = run(args, KRP_RATE_LIMITS='{"bucket": "1/s"}')

    assert finished.returncode != 0
    assert "KRP cannot start: KRP_RATE_LIMITS: bucket: not a resource type (" in finished.stderr
    assert "s3_bucket" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_worker_refuses_a_queue_that_no_environment_owns():
    finished = run(celery_worker("staging", name="stray"))

    assert finished.returncode != 0
    assert "staging" in finished.stdout + finished.stderr


def test_manage_check_passes_with_good_settings():
    finished = run([sys.executable, str(ROOT / "manage.py"), "check"])

    assert finished.returncode == 0, finished.stderr


@pytest.mark.parametrize(
    "args", [manage("check"), celery_worker("alpha", name="bad")],
    ids=["manage-check", "celery-worker"],
)
def test_a_metrics_directory_that_cannot_be_made_stops_the_process_naming_the_variable(args):
    finished = run(args, KRP_METRICS_DIR="/proc/krp-metrics")

    assert finished.returncode != 0
    assert "KRP cannot start: KRP_METRICS_DIR: " in finished.stderr
    assert "/proc/krp-metrics" in finished.stderr
    assert "Traceback" not in finished.stderr
