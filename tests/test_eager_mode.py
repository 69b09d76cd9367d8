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
