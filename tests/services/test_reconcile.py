"""Reconcile: what the inventory believes against what the account holds, and the fixes."""

import uuid

import pytest

from provisioning.models import FindingKind, ReconcileRun, Resource, ResourceStatus
from provisioning.resources import REGISTRY
from provisioning.services import execute_request
from provisioning.services.reconcile import reconcile
from tests.fixtures.provisioning import make_context, unique_name
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]


def made(user, resource_type="s3_bucket", spec=None, tags=None) -> Resource:
    request = submit(user, unique_name("rec"), resource_type=resource_type, spec=spec or {},
                     tags=tags or {"owner": "payments"})
    outcome = execute_request(request_id=str(request.pk), task_id=request.task_id)
    assert outcome.status == "succeeded", outcome.detail
    return Resource.objects.get(created_by_request=request)


def krp_tagged_bucket(s3, environment: str, stem: str) -> str:
    """A bucket tagged as KRP's for `environment` that no inventory row knows."""
    name = f"krp-{environment}-{stem}-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name,
                     CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [
        {"Key": "krp:managed-by", "Value": "krp"},
        {"Key": "krp:environment", "Value": environment},
        {"Key": "krp:request-id", "Value": str(uuid.uuid4())},
    ]})
    return name


def finding_for(run: ReconcileRun, arn: str):
    return run.findings.filter(arn=arn).first()


# The least spec each type accepts; a type missing here takes {}.
MINIMAL_SPECS = {
    "dynamodb_table": {"partition_key": {"name": "id", "type": "S"}},
    "iam_role": {"trusted_service": "lambda.amazonaws.com"},
}


def test_bucket_deleted_behind_krps_back_is_found_missing_and_marked_with_fix(
    requester, cloud
):
    bucket = made(requester)
    cloud.client("alpha", "s3").delete_bucket(Bucket=bucket.physical_name)

    report = reconcile(environment="alpha")

    finding = finding_for(report, bucket.arn)
    assert finding.kind == FindingKind.MISSING and not finding.resolved
    bucket.refresh_from_db()
    assert bucket.status == ResourceStatus.ACTIVE  # a report changes nothing

    fixed = reconcile(environment="alpha", fix=True)

    assert finding_for(fixed, bucket.arn).action_taken == "marked missing in the inventory"
    bucket.refresh_from_db()
    assert bucket.status == ResourceStatus.MISSING


def test_tag_changed_behind_krps_back_is_drift_and_fix_puts_it_back(requester, cloud):
    queue = made(requester, "sqs_queue")
    sqs = cloud.client("alpha", "sqs")
    sqs.tag_queue(QueueUrl=queue.physical_id, Tags={"owner": "someone-else"})

    report = reconcile(environment="alpha")

    finding = finding_for(report, queue.arn)
    assert finding.kind == FindingKind.DRIFTED
    assert finding.details["tags.owner"] == {"expected": "payments", "actual": "someone-else"}
    queue.refresh_from_db()
    assert queue.status == ResourceStatus.DRIFTED

    fixed = reconcile(environment="alpha", fix=True)

    assert finding_for(fixed, queue.arn).action_taken == "re-applied the spec and tags"
    assert sqs.list_queue_tags(QueueUrl=queue.physical_id)["Tags"]["owner"] == "payments"
    queue.refresh_from_db()
    assert queue.status == ResourceStatus.ACTIVE
    assert finding_for(reconcile(environment="alpha"), queue.arn) is None


def test_setting_changed_behind_krps_back_is_drift(requester, cloud):
    bucket = made(requester, spec={"versioning": True})
    cloud.client("alpha", "s3").put_bucket_versioning(
        Bucket=bucket.physical_name, VersioningConfiguration={"Status": "Suspended"}
    )

    finding = finding_for(reconcile(environment="alpha"), bucket.arn)

    assert finding.details["spec.versioning"] == {"expected": True, "actual": False}


def test_krp_tagged_resource_unknown_to_the_inventory_is_an_orphan_deleted_only_on_request(
    cloud
):
    s3 = cloud.client("alpha", "s3")
    name = krp_tagged_bucket(s3, "alpha", "stray")
    arn = f"arn:aws:s3:::{name}"

    finding = finding_for(reconcile(environment="alpha", fix=True), arn)

    assert finding.kind == FindingKind.ORPHAN and not finding.resolved
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    deleted = finding_for(reconcile(environment="alpha", delete_orphans=True), arn)

    assert deleted.action_taken == "deleted from the cloud"
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_iam_roles_are_checked_although_the_tagging_api_does_not_list_them(requester, cloud):
    role = made(requester, "iam_role", spec={"trusted_service": "lambda.amazonaws.com"})
    cloud.client("alpha", "iam").tag_role(RoleName=role.physical_name,
                                          Tags=[{"Key": "owner", "Value": "x"}])

    finding = finding_for(reconcile(environment="alpha"), role.arn)

    assert finding.kind == FindingKind.DRIFTED
    assert "tags.owner" in finding.details


def test_an_sqs_queues_dead_letter_queue_is_not_an_orphan(requester):
    queue = made(requester, "sqs_queue", spec={"dead_letter_queue": {"max_receive_count": 3}})

    run = reconcile(environment="alpha")

    assert finding_for(run, queue.outputs["dlq_arn"]) is None
    assert finding_for(run, queue.arn) is None


def test_a_resource_of_another_environment_in_the_same_account_is_not_an_orphan(cloud):
    s3 = cloud.client("alpha", "s3")
    name = krp_tagged_bucket(s3, "beta", "shared")

    run = reconcile(environment="alpha", delete_orphans=True)

    assert finding_for(run, f"arn:aws:s3:::{name}") is None
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_fix_never_adopts_something_else_that_now_has_the_name(requester, cloud):
    bucket = made(requester)
    s3 = cloud.client("alpha", "s3")
    s3.put_bucket_tagging(Bucket=bucket.physical_name,
                          Tagging={"TagSet": [{"Key": "owner", "Value": "another-tool"}]})

    finding = finding_for(reconcile(environment="alpha", fix=True), bucket.arn)

    assert finding.kind == FindingKind.DRIFTED and not finding.resolved
    assert "not managed by KRP" in finding.details["not_fixed"]
    tags = s3.get_bucket_tagging(Bucket=bucket.physical_name)["TagSet"]
    assert tags == [{"Key": "owner", "Value": "another-tool"}]


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_an_orphan_of_each_type_is_found_named_by_its_type_and_deleted_on_request(
    type_name, krp_settings, cloud
):
    # Made and tagged by the provisioner, as by a request whose inventory row never came.
    kind = REGISTRY[type_name]
    ctx = make_context(krp_settings, cloud, kind=kind, name=unique_name("orphan"),
                       spec=MINIMAL_SPECS.get(type_name, {}))
    arn = kind.create(ctx, kind.parse_spec(MINIMAL_SPECS.get(type_name, {}))).arn

    finding = finding_for(reconcile(environment="alpha"), arn)

    assert finding.kind == FindingKind.ORPHAN
    assert (finding.resource_type, finding.details["physical_name"]) == (
        type_name, ctx.physical_name
    )

    deleted = finding_for(reconcile(environment="alpha", delete_orphans=True), arn)

    assert deleted.action_taken == "deleted from the cloud"
    assert kind.describe(ctx) is None
