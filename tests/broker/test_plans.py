"""A prod update is planned by a real worker of prod before anyone approves it, and what
the approver approved is what the worker applies."""

import time

import pytest

from provisioning.models import RequestAction, RequestStatus
from provisioning.services import request_approve
from tests.broker.test_provisioning import wait_for
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def planned(request, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request.refresh_from_db()
        if request.plan is not None:
            return request
        time.sleep(0.2)
    raise AssertionError(f"request {request.pk} was never planned")


def test_a_prod_update_is_planned_by_prods_worker_before_approval(
    requester, operator, start_worker, cloud
):
    start_worker("prod", name="prod-planner").wait_for("ready.")
    created = submit(requester, unique_name("planned"), environment="prod", expect_new=True)
    assert planned(created).plan["lines"][0] == f"will create s3_bucket {created.physical_name}"
    request_approve(request_id=created.pk, user=operator)
    assert wait_for(created, RequestStatus.SUCCEEDED, RequestStatus.FAILED).status == (
        RequestStatus.SUCCEEDED)

    update = submit(requester, created.name, environment="prod",
                    action=RequestAction.UPDATE, spec={"versioning": True}, expect_new=True)

    update = planned(update)
    assert update.status == RequestStatus.PENDING_APPROVAL
    assert update.plan["lines"] == [
        f"will update s3_bucket {update.physical_name}: 1 change", "versioning: false -> true"]
    request_approve(request_id=update.pk, user=operator)
    done = wait_for(update, RequestStatus.SUCCEEDED, RequestStatus.FAILED)
    assert done.status == RequestStatus.SUCCEEDED, done.error_message
    assert done.plan["checked"] is True
    assert cloud.client("prod", "s3").get_bucket_versioning(
        Bucket=update.physical_name)["Status"] == "Enabled"
