"""A whole worker SIGKILLed mid-job, on each broker: the request still ends succeeded with
one resource. RabbitMQ hands the unacked message to the next worker as soon as the dead
one's connection drops, so the job runs again at once, before any lease lapses; Redis keeps
it until the visibility timeout, so there the sweep's lease path brings it back."""

import signal
import time

import pytest

from provisioning.models import RequestStatus, Resource
from provisioning.services import request_approve, sweep
from tests.broker.test_provisioning import buckets, wait_for
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def test_job_of_a_killed_worker_runs_again_and_leaves_one_resource(
    requester, operator, start_worker, sandbox_faults, broker, cloud
):
    doomed = start_worker("prod", name="prod-killed")
    doomed.wait_for("ready.")
    sandbox_faults.set_faults(latency=0.5)  # the job takes seconds
    request = submit(requester, unique_name("redeliver"), environment="prod")
    request_approve(request_id=request.pk, user=operator)
    wait_for(request, RequestStatus.RUNNING)
    doomed.stop(signal.SIGKILL)
    sandbox_faults.set_faults(latency=0.0)

    rescue = start_worker("prod", name="prod-rescue")
    rescue.wait_for("ready.")
    if broker.kind == "rabbitmq":
        # Redelivered to the new worker at once: it receives the job within seconds, long
        # before the lease (6 s in the tests) lapses. (Redis holds the message until the
        # visibility timeout, an hour.)
        rescue.wait_for(f"[{request.task_id}] received", timeout=5)
    # Either way the dead run's lease decides who may work on it: once it lapses the
    # sweep takes the request back, unless the redelivered run already finished it.
    time.sleep(6.5)
    report = sweep()
    request.refresh_from_db()
    assert str(request.pk) in report.reclaimed or request.status == RequestStatus.SUCCEEDED

    done = wait_for(request, RequestStatus.SUCCEEDED, timeout=90)
    assert buckets(cloud, "prod").count(done.physical_name) == 1
    assert Resource.objects.filter(environment="prod", name=done.name).count() == 1
