"""When may a run adopt a resource it finds under its name? Only what its request made."""

import pytest
from django.utils import timezone

from provisioning.errors import Conflict
from provisioning.models import RequestStatus, ResourceRequest
from provisioning.services import execute_request, request_retry
from provisioning.services.transitions import transition
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit
from tests.services.test_submit_validation import live_resource

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]


def untagged_bucket(cloud, name):
    cloud.client("alpha", "s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})


def tags_of(cloud, name):
    s3 = cloud.client("alpha", "s3")
    try:
        return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
    except s3.exceptions.ClientError:
        return {}


def test_a_retry_whose_first_attempt_never_created_does_not_adopt_a_strangers_bucket(
    requester, cloud
):
    request = submit(requester, unique_name("adopt"))
    untagged_bucket(cloud, request.physical_name)
    # An earlier attempt that failed before any create call (e.g. STS throttled).
    ResourceRequest.objects.filter(pk=request.pk).update(attempts=1)

    execute_request(request_id=str(request.pk), task_id=request.task_id)

    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED
    assert "not managed by KRP" in request.error_message
    assert tags_of(cloud, request.physical_name) == {}


def test_a_run_after_a_create_was_issued_adopts_its_own_untagged_bucket(requester, cloud):
    request = submit(requester, unique_name("adopt"))
    untagged_bucket(cloud, request.physical_name)  # created, then the worker died
    ResourceRequest.objects.filter(pk=request.pk).update(attempts=1,
                                                         create_issued_at=timezone.now())

    execute_request(request_id=str(request.pk), task_id=request.task_id)

    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED
    assert tags_of(cloud, request.physical_name)["krp:request-id"] == str(request.pk)


def test_retrying_a_failed_update_after_a_later_change_is_refused(requester, operator):
    resource = live_resource(requester, name="changing")
    update = submit(requester, "changing", action="update", spec={"versioning": True})
    transition(update.pk, from_statuses=["queued"], to="running", actor="worker")
    transition(update.pk, from_statuses=["running"], to="failed", actor="worker")
    resource.save()  # a later update changed it

    with pytest.raises(Conflict, match="has changed since this update was asked for"):
        request_retry(request_id=update.pk, user=operator)


def test_retrying_a_failed_create_whose_name_now_exists_is_refused(requester, operator):
    create = submit(requester, unique_name("adopt"))
    transition(create.pk, from_statuses=["queued"], to="running", actor="worker")
    transition(create.pk, from_statuses=["running"], to="failed", actor="worker")
    live_resource(requester, name=create.name)

    with pytest.raises(Conflict, match="exists now; submit an update"):
        request_retry(request_id=create.pk, user=operator)
