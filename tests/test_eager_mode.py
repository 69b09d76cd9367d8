"""Eager mode: no worker; the task runs in the Django process with the Django container."""

import os

import pytest
from django_celery_results.models import TaskResult

from containers.settings import KrpSettings
from krp_project.celery import create_celery_app


@pytest.mark.django_db
def test_eager_task_runs_in_this_process_with_the_django_container(container, sandbox):
    eager = KrpSettings.from_environ({**os.environ, "KRP_TASK_MODE": "eager"})
    app = create_celery_app(eager, container=container)

    result = app.tasks["krp.environment_check"].apply_async(kwargs={"environment": "alpha"})

    assert result.successful(), result.traceback
    assert result.result["worker"] == container.runtime().describe()
    assert result.result["worker"]["pid"] == os.getpid()
    assert result.result["identity"]["account"] == "111111111111"
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS"
    assert stored.task_name == "krp.environment_check"


@pytest.mark.django_db
def test_eager_task_refuses_a_job_stamped_with_other_settings(container, sandbox):
    eager = KrpSettings.from_environ({**os.environ, "KRP_TASK_MODE": "eager"})
    app = create_celery_app(eager, container=container)

    result = app.tasks["krp.environment_check"].apply_async(
        kwargs={"environment": "alpha"}, headers={"krp_fingerprint": "0000000000000000"}
    )

    assert result.failed()
    assert "published with settings fingerprint 0000000000000000" in str(result.result)
    assert TaskResult.objects.get(task_id=result.id).status == "FAILURE"


@pytest.mark.django_db
def test_eager_request_waits_out_its_backoff_and_is_not_left_queued(
    container, sandbox_faults, requester
):
    import threading
    import time

    from tests.fixtures.requests import submit

    eager = KrpSettings.from_environ({**os.environ, "KRP_TASK_MODE": "eager"})
    app = create_celery_app(eager, container=container)
    request = submit(requester, "eager-retry")
    sandbox_faults.set_faults(throttle_rate=1.0, services=["s3"])
    throttled_before = sandbox_faults._call("/_krp/calls")["throttled"].get("s3", 0)

    def lift_once_throttled():  # every try of the first attempt refused: let the next in
        refused = throttled_before + eager.aws_max_attempts
        while sandbox_faults._call("/_krp/calls")["throttled"].get("s3", 0) < refused:
            time.sleep(0.05)
        sandbox_faults.set_faults(throttle_rate=0.0)

    threading.Thread(target=lift_once_throttled, daemon=True).start()

    result = app.tasks["krp.provision.s3_bucket"].apply_async(
        kwargs={"request_id": str(request.pk)}, task_id=request.task_id
    )

    assert result.result["outcome"] == "succeeded"
    request.refresh_from_db()
    assert request.status == "succeeded"
    assert request.attempts >= 2


@pytest.mark.django_db
def test_eager_request_without_aws_credentials_fails_saying_what_to_set(
    container, sandbox, requester, monkeypatch
):
    from tests.fixtures.requests import submit

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    container.reset_singletons()  # sessions are built again, from this environment
    eager = KrpSettings.from_environ({**os.environ, "KRP_TASK_MODE": "eager"})
    app = create_celery_app(eager, container=container)
    request = submit(requester, "no-credentials")

    result = app.tasks["krp.provision.s3_bucket"].apply_async(
        kwargs={"request_id": str(request.pk)}, task_id=request.task_id
    )

    assert result.result["outcome"] == "failed"
    request.refresh_from_db()
    assert (request.status, request.error_code) == ("failed", "no_credentials")
    assert request.error_message.startswith(
        "no AWS credentials for environment 'alpha' in this process: set AWS_ACCESS_KEY_ID "
        "and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, in the environment of the process that "
        "runs its jobs")
