"""A resource deleted behind KRP's back, against the sandbox: reconcile reports it missing
on every run until someone decides; after it is created again (same inventory row) or
forgotten, reconcile has nothing to say about it."""

import pytest
from django.contrib.auth.models import Permission, User

from provisioning.models import (
    FindingKind,
    RequestAction,
    Resource,
    ResourceStatus,
)
from provisioning.resources.base import REQUEST_ID
from provisioning.services import resource_forget
from provisioning.services.reconcile import reconcile
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import carried_out, submit

# Committed rows: a run's lease keeper renews the lease from a thread of its own.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sandbox")]



@pytest.fixture
def lost_bucket(requester, cloud) -> Resource:
    """A bucket KRP made, deleted behind its back and marked missing by reconcile --fix."""
    request = submit(requester, unique_name("lost"), spec={"versioning": False})
    carried_out(request)
    bucket = Resource.objects.get(created_by_request=request)
    cloud.client("alpha", "s3").delete_bucket(Bucket=bucket.physical_name)
    reconcile(environment="alpha", fix=True)
    bucket.refresh_from_db()
    assert bucket.status == ResourceStatus.MISSING
    return bucket


def findings_about(resource: Resource) -> list[str]:
    run = reconcile(environment="alpha")
    return list(run.findings.filter(resource=resource).values_list("kind", flat=True))


def test_a_missing_resource_is_reported_by_every_reconcile_until_someone_decides(lost_bucket):
    assert findings_about(lost_bucket) == [FindingKind.MISSING]
    assert findings_about(lost_bucket) == [FindingKind.MISSING]


def test_creating_it_again_makes_it_under_the_same_inventory_row_and_reconcile_is_clean(
    lost_bucket, requester, cloud
):
    again = submit(requester, lost_bucket.name, spec={"versioning": True})
    carried_out(again)

    rows = Resource.objects.filter(environment="alpha", resource_type="s3_bucket",
                                   name=lost_bucket.name)
    assert list(rows.values_list("pk", flat=True)) == [lost_bucket.pk]
    lost_bucket.refresh_from_db()
    assert (lost_bucket.status, lost_bucket.created_by_request_id) == (
        ResourceStatus.ACTIVE, again.pk)
    assert lost_bucket.spec["versioning"] is True
    tags = cloud.client("alpha", "s3").get_bucket_tagging(Bucket=lost_bucket.physical_name)
    assert {"Key": REQUEST_ID, "Value": str(again.pk)} in tags["TagSet"]
    assert findings_about(lost_bucket) == []


def test_a_forgotten_resource_is_not_reconciled_and_its_name_is_created_anew(
    lost_bucket, requester, operator
):
    operator.user_permissions.add(Permission.objects.get(codename="forget_resource"))
    resource_forget(resource_id=lost_bucket.pk, user=User.objects.get(pk=operator.pk))

    assert findings_about(lost_bucket) == []
    anew = submit(requester, lost_bucket.name)
    carried_out(anew)
    lost_bucket.refresh_from_db()
    assert lost_bucket.status == ResourceStatus.FORGOTTEN
    made = Resource.objects.get(created_by_request=anew)
    assert made.pk != lost_bucket.pk and made.status == ResourceStatus.ACTIVE
    assert findings_about(made) == []


def test_deleting_a_missing_resource_finds_nothing_to_remove_and_marks_it_deleted(
    lost_bucket, requester
):
    delete = submit(requester, lost_bucket.name, action=RequestAction.DELETE)
    carried_out(delete)

    lost_bucket.refresh_from_db()
    assert lost_bucket.status == ResourceStatus.DELETED
    assert findings_about(lost_bucket) == []
