"""A request held up by throttling for longer than Celery's default of three retries is
still retried by its worker, and succeeds once the weather clears: its own time budget
decides when to stop, not Celery's max_retries."""

import pytest

from provisioning.models import RequestStatus
from provisioning.services import request_approve
from tests.broker.test_provisioning import wait_for
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit
from tests.resources.test_lifecycle import count_in_cloud

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def test_request_throttled_past_celerys_default_retries_succeeds_when_it_clears(
    requester, operator, start_worker, sandbox_faults, cloud
):
    # prod: no session worker consumes its queue, so this worker alone runs the request.
    start_worker("prod", name="prod-weather").wait_for("ready.")
    sandbox_faults.set_faults(throttle_rate=1.0, services=["s3"])
    request = submit(requester, unique_name("weather"), environment="prod", expect_new=True)
    request_approve(request_id=request.pk, user=operator)

    # A fifth attempt is a fourth retry, one more than Celery allows a task by default:
    # without the fix the request stays queued after its fourth attempt.
    wait_for(request, RequestStatus.QUEUED, RequestStatus.RUNNING, timeout=60,
             condition=lambda r: r.attempts >= 5)
    sandbox_faults.set_faults(throttle_rate=0.0)

    done = wait_for(request, RequestStatus.SUCCEEDED, RequestStatus.FAILED, timeout=60)
    assert done.status == RequestStatus.SUCCEEDED, done.error_message
    # The fifth attempt may already be past its S3 calls when the weather clears.
    assert done.attempts >= 5
    assert count_in_cloud(cloud, "s3_bucket", done.physical_name, environment="prod") == 1
