"""Import against the sandbox: each of the five types, made by hand with settings other than
KRP's defaults, is imported with the settings it has, tagged as KRP's (keeping its own
tags), recorded active, and then updated and reconciled like anything KRP made; what
another environment's KRP claims, or KRP already manages, is refused."""

import pytest

from provisioning.errors import InvalidRequest
from provisioning.models import (
    FindingKind,
    RequestAction,
    RequestStatus,
    Resource,
    ResourceRequest,
    ResourceStatus,
)
from provisioning.resources import resource_type
from provisioning.services import execute_request
from provisioning.services.reconcile import reconcile
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit
from tests.resources.test_import_specs import (
    provisioned_table_with_sort_key,
    queue_with_dlq,
    role_with_both_policies,
    versioned_kms_bucket,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]


def plain_topic(cloud):
    sns, name = cloud.client("alpha", "sns"), unique_name("hand-made")
    sns.create_topic(Name=name, Attributes={"DisplayName": "Billing"},
                     Tags=[{"Key": "cost-centre", "Value": "42"}])
    return "sns_topic", name, None, {"fifo": False, "content_based_deduplication": False,
                                     "display_name": "Billing", "subscriptions": []}


# What each type's update changes after the import, and how the cloud then shows it.
UPDATES = {
    "s3_bucket": {"lifecycle_expiration_days": 30},
    "sqs_queue": {"visibility_timeout_seconds": 60},
    "sns_topic": {"display_name": "Billing2"},
    "dynamodb_table": {"read_capacity": 6},
    "iam_role": {"description": "imported"},
}


def run(request: ResourceRequest) -> ResourceRequest:
    execute_request(request_id=str(request.pk), task_id=request.task_id)
    request.refresh_from_db()
    return request


def imported(requester, type_name, physical, **fields) -> ResourceRequest:
    name = resource_type(type_name).krp_name_for(physical, prefix="krp", environment="alpha")
    return submit(requester, name, resource_type=type_name, action=RequestAction.IMPORT,
                  physical_name=physical, expect_new=True, **fields)


@pytest.mark.parametrize("make", [versioned_kms_bucket, queue_with_dlq, plain_topic,
                                  provisioned_table_with_sort_key, role_with_both_policies])
def test_a_hand_made_resource_is_imported_with_its_settings_and_then_managed_as_any(
    requester, cloud, make
):
    type_name, physical, _, settings = make(cloud)
    kind = resource_type(type_name)

    done = run(imported(requester, type_name, physical, tags={"owner": "data"}))

    assert done.status == RequestStatus.SUCCEEDED, done.error_message
    assert done.plan["lines"][0].startswith(f"will import {type_name} {physical} as alpha/")
    resource = Resource.objects.get(created_by_request=done)
    assert (resource.status, resource.physical_name) == (ResourceStatus.ACTIVE, physical)
    assert kind.expected_settings(kind.parse_spec(resource.spec)) == {
        **kind.expected_settings(kind.parse_spec(resource.spec)), **settings}
    assert resource.tags["krp:managed-by"] == "krp"
    assert resource.tags["krp:request-id"] == str(done.pk)
    assert resource.tags["owner"] == "data"

    update = run(submit(requester, resource.name, resource_type=type_name,
                        action=RequestAction.UPDATE, spec=UPDATES[type_name],
                        expect_new=True))
    assert update.status == RequestStatus.SUCCEEDED, update.error_message
    resource.refresh_from_db()
    assert resource.spec.items() >= UPDATES[type_name].items()

    run_ = reconcile(environment="alpha")
    assert not run_.findings.filter(resource=resource).exclude(
        kind=FindingKind.ORPHAN).exists(), list(run_.findings.filter(resource=resource)
                                                 .values("kind", "details"))


def test_the_resources_own_tags_are_kept(requester, cloud):
    _, physical, _, _ = plain_topic(cloud)
    done = run(imported(requester, "sns_topic", physical))
    resource = Resource.objects.get(created_by_request=done)
    assert resource.tags["cost-centre"] == "42"
    arn = resource.arn
    tags = {t["Key"]: t["Value"] for t in cloud.client("alpha", "sns").list_tags_for_resource(
        ResourceArn=arn)["Tags"]}
    assert tags["cost-centre"] == "42" and tags["krp:environment"] == "alpha"


def test_what_another_environments_krp_tagged_is_refused(requester, cloud):
    s3, name = cloud.client("alpha", "s3"), unique_name("claimed")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={
        "LocationConstraint": "ap-northeast-2"})
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [
        {"Key": "krp:managed-by", "Value": "krp"}, {"Key": "krp:environment", "Value": "prod"},
        {"Key": "krp:request-id", "Value": "0"}]})

    done = run(imported(requester, "s3_bucket", name))

    assert done.status == RequestStatus.FAILED
    assert done.error_code == "claimed_elsewhere"
    assert "environment 'prod'" in done.error_message
    assert not Resource.objects.filter(physical_name=name).exists()


def test_what_krp_already_manages_is_refused_at_submit(requester):
    made = run(submit(requester, unique_name("mine"), expect_new=True))

    with pytest.raises(InvalidRequest) as refused:
        submit(requester, unique_name("again"), action=RequestAction.IMPORT,
               physical_name=made.physical_name)

    assert refused.value.code == "already_managed"
    assert refused.value.fields == {"physical_name": [
        f"s3_bucket {made.physical_name} is already managed by KRP as alpha/{made.name}"]}


def test_an_import_takes_no_spec_and_needs_a_physical_name(requester):
    with pytest.raises(InvalidRequest) as refused:
        submit(requester, unique_name("x"), action=RequestAction.IMPORT, spec={"versioning": True})
    assert set(refused.value.fields) == {"physical_name", "spec"}


def test_an_orphan_of_this_environment_is_taken_back_by_an_import(requester, cloud):
    """Reconcile names the import that keeps an orphan (KRP's tags for this environment, no
    inventory row): that import takes it over, under this request's id."""
    import uuid

    s3, name = cloud.client("alpha", "s3"), f"krp-alpha-stray-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={
        "LocationConstraint": "ap-northeast-2"})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        key: True for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                              "RestrictPublicBuckets")})
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [
        {"Key": "krp:managed-by", "Value": "krp"}, {"Key": "krp:environment", "Value": "alpha"},
        {"Key": "krp:request-id", "Value": str(uuid.uuid4())}]})
    hint = reconcile(environment="alpha").findings.get(
        kind=FindingKind.ORPHAN, arn=f"arn:aws:s3:::{name}").details["import"]
    assert hint == f"krp import --env alpha --type s3_bucket --names {name}"

    done = run(imported(requester, "s3_bucket", name))

    assert done.status == RequestStatus.SUCCEEDED, done.error_message
    assert Resource.objects.get(created_by_request=done).name == f"stray-{name[-8:]}"
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
    assert tags["krp:request-id"] == str(done.pk)


def test_an_import_in_prod_is_planned_with_what_it_reads_and_waits_for_approval(
    requester, operator, cloud
):
    from provisioning.services import request_approve

    s3, name = cloud.client("prod", "s3"), unique_name("prod-made")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={
        "LocationConstraint": "ap-northeast-2"})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        key: True for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                              "RestrictPublicBuckets")})

    waiting = submit(requester, name, resource_type="s3_bucket", environment="prod",
                     action=RequestAction.IMPORT, physical_name=name, expect_new=True)

    assert waiting.status == RequestStatus.PENDING_APPROVAL
    assert waiting.plan["lines"][0] == (f"will import s3_bucket {name} as prod/{name}, with "
                                        "the settings it has, and tag it as KRP's")
    assert "versioning: + true" in waiting.plan["lines"]
    request_approve(request_id=waiting.pk, user=operator)
    waiting.refresh_from_db()
    done = run(waiting)
    assert done.status == RequestStatus.SUCCEEDED, done.error_message
    assert Resource.objects.get(created_by_request=done).spec["versioning"] is True
