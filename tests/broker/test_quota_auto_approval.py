"""In an environment that auto-approves within quota, a real worker of it carries out a
create within its team's quota as soon as it is recorded, with no one approving; the next
create, beyond the quota, waits for approval, planned by that worker for its approver."""

import pytest

from provisioning.models import Quota, RequestStatus
from provisioning.services import request_submit
from tests.broker.test_plans import planned
from tests.broker.test_provisioning import wait_for
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def test_theta_carries_out_a_create_within_quota_and_holds_the_one_beyond(
        requester, team, start_worker, cloud):
    start_worker("theta", name="theta").wait_for("ready.")
    Quota.objects.create(team=team, environment="theta", resource_type="s3_bucket",
                         max_live=1)

    within = submit(requester, unique_name("auto"), environment="theta", expect_new=True)
    done = wait_for(within, RequestStatus.SUCCEEDED, RequestStatus.FAILED)
    # Through the service itself: the fixture's submit would plan a waiting one here.
    beyond = planned(request_submit(user=requester, environment="theta",
                                    resource_type="s3_bucket", name=unique_name("held"))[0])

    assert done.status == RequestStatus.SUCCEEDED, done.error_message
    assert [event.actor for event in done.events.all()][0] == "rita"  # no approver
    cloud.client("theta", "s3").head_bucket(Bucket=done.physical_name)
    assert beyond.status == RequestStatus.PENDING_APPROVAL
    assert "beyond it: team platform's quota for s3_bucket in theta is 1 live resources; it " \
           "has 1 (1 live, 0 being created)" in beyond.events.first().message
