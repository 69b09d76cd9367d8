"""Workers survive the broker: a worker busy on jobs while its broker goes away for a
minute, and comes back on the same address, keeps running and serves the next job.

The broker is a private one of the test's own, of the pass's kind (a redis-server or a
RabbitMQ node, never the shared one), really stopped and started again. The worker runs as
the README and docker-compose.yml run it (with mingle, gossip and heartbeat, which hold
broker connections of their own) and with two pool children, both busy when the broker
goes. The test process publishes through a Celery app for that broker, put in place with
the container's own override.
"""

from __future__ import annotations

import os
import time

import pytest
from dependency_injector import providers

from containers.settings import KrpSettings
from krp_project.celery import create_celery_app
from provisioning.models import RequestStatus
from tests.broker.test_provisioning import buckets, wait_for
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.broker, pytest.mark.private_broker,
              pytest.mark.django_db(transaction=True)]

# The outage the issue asks workers to ride out: a minute.
OUTAGE_SECONDS = 60.0


@pytest.fixture
def publish_to_private_broker(private_broker, container):
    """This process's container publishes to the private broker for the test."""
    settings = KrpSettings.from_environ({**os.environ, "KRP_BROKER_URL": private_broker.url})
    app = create_celery_app(settings, container=container)
    container.celery_app.override(providers.Object(app))
    return private_broker


def test_busy_worker_rides_out_a_one_minute_broker_outage_and_serves_the_next_job(
    publish_to_private_broker, start_worker, requester, sandbox_faults, cloud
):
    broker = publish_to_private_broker
    worker = start_worker("alpha", name="outage", env={"KRP_BROKER_URL": broker.url},
                          as_documented=True, concurrency=2)
    worker.wait_for("ready.")
    sandbox_faults.set_faults(latency=1.0)  # every AWS call takes a second: both jobs busy
    busy = [submit(requester, unique_name("outage")) for _ in range(2)]
    for request in busy:
        wait_for(request, RequestStatus.RUNNING)

    broker.stop()
    time.sleep(OUTAGE_SECONDS)  # the busy jobs finish (and try to ack) while it is down
    broker.start()
    sandbox_faults.set_faults(latency=0.0)

    done = [wait_for(request, RequestStatus.SUCCEEDED, timeout=60) for request in busy]
    after = wait_for(submit(requester, unique_name("after")), RequestStatus.SUCCEEDED,
                     timeout=120)
    assert worker.process.poll() is None, f"the worker exited:\n{worker.log()[-6000:]}"
    assert "Connected to" in worker.log().rsplit("Connection to broker lost", 1)[1]
    names = buckets(cloud, "alpha")
    for request in [*done, after]:
        assert names.count(request.physical_name) == 1
