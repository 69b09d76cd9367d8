"""A countdown is never dropped: a request due a few seconds ahead, published to a queue
that no worker has served yet, runs once that queue's worker starts.

On RabbitMQ a countdown travels through native delayed delivery and comes back through a
binding Celery makes at worker start, which fails for a queue nobody has declared yet: the
message was dropped when its countdown ended. The broker is a fresh one of the test's own,
so no earlier test has declared the queue."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from dependency_injector import providers
from django.utils import timezone

from containers.settings import KrpSettings
from krp_project.celery import create_celery_app
from provisioning.models import RequestStatus
from provisioning.services import request_approve
from tests.broker.test_provisioning import wait_for
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit
from tests.resources.test_lifecycle import count_in_cloud

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

COUNTDOWN_SECONDS = 3


def test_a_countdown_to_a_queue_no_worker_served_yet_runs_when_its_worker_starts(
    private_broker, container, start_worker, requester, operator, cloud
):
    settings = KrpSettings.from_environ({**os.environ, "KRP_BROKER_URL": private_broker.url})
    container.celery_app.override(providers.Object(create_celery_app(settings,
                                                                     container=container)))
    env = {"KRP_BROKER_URL": private_broker.url}
    first = start_worker("alpha", name="first", env=env)  # another queue's worker only
    first.wait_for("ready.")
    request = submit(requester, unique_name("later"), environment="prod", expect_new=True,
                     not_before=timezone.now() + timedelta(seconds=COUNTDOWN_SECONDS))
    request_approve(request_id=request.pk, user=operator)  # published with the countdown
    request.refresh_from_db()
    assert request.published_at is not None

    time.sleep(COUNTDOWN_SECONDS + 5)  # the countdown ends while prod has no worker
    start_worker("prod", name="late", env=env).wait_for("ready.")

    done = wait_for(request, RequestStatus.SUCCEEDED, RequestStatus.FAILED, timeout=60)
    assert done.status == RequestStatus.SUCCEEDED, done.error_message
    assert count_in_cloud(cloud, "s3_bucket", done.physical_name, environment="prod") == 1
