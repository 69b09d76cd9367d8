"""Broker mode against a real Redis and real prefork worker processes."""

import json
import os

import pytest
from celery.result import AsyncResult
from django_celery_results.models import TaskResult

from containers.settings import KrpSettings
from provisioning.errors import SettingsMismatch
from provisioning.tasks import environment_check
from tests.fixtures.processes import parent_pid

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def test_worker_child_builds_its_own_container_from_the_same_settings(alpha_worker, container):
    answer = environment_check.apply_async(kwargs={"environment": "alpha"}).get(timeout=60)

    worker = answer["worker"]
    assert worker["fingerprint"] == container.settings().fingerprint
    # Built in the pool child itself, not inherited from the main worker process (which
    # built its own runtime at start-up, before forking).
    assert worker["pid"] not in (alpha_worker.pid, os.getpid())
    assert parent_pid(worker["pid"]) == alpha_worker.pid
    assert answer["identity"]["account"] == "111111111111"
    assert f"settings fingerprint {container.settings().fingerprint}" in alpha_worker.log()


def test_job_published_with_other_settings_is_refused_before_touching_aws(
    alpha_worker, container, sandbox
):
    environments = json.loads(os.environ["KRP_ENVIRONMENTS"])
    environments["alpha"]["region"] = "eu-west-1"
    elsewhere = KrpSettings.from_environ(
        {**os.environ, "KRP_ENVIRONMENTS": json.dumps(environments)}
    )
    container.settings.override(elsewhere)
    aws_calls = sandbox.calls("sts")

    job = environment_check.apply_async(kwargs={"environment": "alpha"})

    with pytest.raises(SettingsMismatch) as refused:
        job.get(timeout=60)
    assert f"published with settings fingerprint {elsewhere.fingerprint}" in str(refused.value)
    stored = TaskResult.objects.get(task_id=job.id)
    assert stored.status == "FAILURE"
    assert "SettingsMismatch" in stored.result
    assert sandbox.calls("sts") == aws_calls


def test_alpha_worker_never_runs_a_prod_job_and_a_prod_worker_does(
    alpha_worker, start_worker, broker
):
    prod_job = environment_check.apply_async(kwargs={"environment": "prod"})
    environment_check.apply_async(kwargs={"environment": "alpha"}).get(timeout=60)

    assert AsyncResult(prod_job.id).status == "PENDING"
    assert broker.settled_count("prod", 1) == 1

    start_worker("prod", name="prod")
    answer = prod_job.get(timeout=90)
    assert answer["identity"]["account"] == "222222222222"
    assert broker.message_count("prod") == 0


def test_no_secret_reaches_the_worker_log_or_the_task_result(alpha_worker):
    job = environment_check.apply_async(kwargs={"environment": "alpha"})
    job.get(timeout=60)

    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    log = alpha_worker.log()
    assert "DEBUG" in log  # the worker runs at DEBUG, the most talkative level
    assert secret not in log
    assert "SessionToken" not in log and "aws_secret_access_key" not in log
    stored = TaskResult.objects.get(task_id=job.id)
    for field in (stored.result, stored.task_args, stored.task_kwargs, stored.traceback):
        assert secret not in (field or "")


def test_the_periodic_reconcile_runs_on_the_environments_worker_and_is_recorded(alpha_worker):
    from provisioning.models import ReconcileRun
    from provisioning.tasks import reconcile_environment

    answer = reconcile_environment.apply_async(kwargs={"environment": "alpha"}).get(timeout=120)

    run = ReconcileRun.objects.get(pk=answer["run"])
    assert (run.environment, run.triggered_by) == ("alpha", "beat")
    assert run.status in ("clean", "findings")
    assert run.finished_at is not None
