"""Reconcile holds no lease: a fix checks again, just before it writes, that no request on
the resource is in flight. Each race is made for real: the request is submitted from
reconcile's own progress callback, after the run listed the requests in flight and before
it comes to that resource.

In prod, whose requests wait for an approval and whose queue no session worker consumes:
the rows are committed (a run's lease keeper renews on a connection of its own), and a
request queued by the test stays queued until the test runs it.
"""

import pytest

from provisioning.models import FindingKind, RequestStatus, Resource, ResourceStatus
from provisioning.services import execute_request
from provisioning.services.reconcile import reconcile
from tests.fixtures.provisioning import unique_name
from tests.resources.test_lifecycle import count_in_cloud
from tests.resources.test_transient_faults import queued_in_prod
from tests.services.test_reconcile import finding_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sandbox")]


def submitting_when(text: str, submit_it):
    """A progress callback that submits a request once, when reconcile says `text`."""
    submitted = []

    def progress(line: str) -> None:
        if text in line and not submitted:
            submitted.append(submit_it())

    return progress, submitted


def test_fix_does_not_reapply_the_spec_over_a_request_queued_after_the_run_began(
    requester, operator, cloud
):
    creating = queued_in_prod(requester, operator, unique_name("race"),
                              spec={"versioning": True})
    assert execute_request(request_id=str(creating.pk), task_id=creating.task_id).status == (
        "succeeded")
    bucket = Resource.objects.get(created_by_request=creating)
    s3 = cloud.client("prod", "s3")
    s3.put_bucket_versioning(Bucket=bucket.physical_name,
                             VersioningConfiguration={"Status": "Suspended"})
    progress, submitted = submitting_when(
        f"fixing s3_bucket {bucket.name}",
        lambda: queued_in_prod(requester, operator, bucket.name, action="update",
                               spec={"versioning": False}),
    )

    report = reconcile(environment="prod", fix=True, progress=progress)

    assert submitted and submitted[0].status == RequestStatus.QUEUED
    finding = finding_for(report, bucket.arn)
    assert finding.kind == FindingKind.DRIFTED and not finding.resolved
    assert finding.details["not_fixed"] == (
        "a request on this resource is in flight (queued); its outcome will say")
    # The spec KRP recorded (versioning on) was not put back over the update.
    assert s3.get_bucket_versioning(Bucket=bucket.physical_name)["Status"] == "Suspended"
    bucket.refresh_from_db()
    assert bucket.status == ResourceStatus.DRIFTED


def test_fix_does_not_delete_a_leftover_whose_name_a_new_create_took_after_the_run_began(
    requester, operator, sandbox_faults, cloud
):
    # A failed create that could not roll back: its untagged bucket is left behind.
    sandbox_faults.set_faults(deny_actions=["PutBucketTagging", "DeleteBucket"])
    name = unique_name("race")
    failed = queued_in_prod(requester, operator, name)
    assert execute_request(request_id=str(failed.pk), task_id=failed.task_id).status == (
        "failed")
    failed.refresh_from_db()
    assert failed.left_behind == [failed.physical_name]
    sandbox_faults.set_faults(deny_actions=[])
    progress, submitted = submitting_when(
        f"looking up s3_bucket {failed.physical_name}",
        lambda: queued_in_prod(requester, operator, name),
    )

    report = reconcile(environment="prod", fix=True, progress=progress)

    assert submitted and submitted[0].status == RequestStatus.QUEUED
    finding = finding_for(report, f"arn:aws:s3:::{failed.physical_name}")
    assert finding.kind == FindingKind.LEFT_BEHIND and not finding.resolved
    assert finding.details["not_fixed"] == (
        "a request on this resource is in flight (queued); its outcome will say")
    assert count_in_cloud(cloud, "s3_bucket", failed.physical_name, environment="prod") == 1
    failed.refresh_from_db()
    assert failed.left_behind == [failed.physical_name]
