"""`krp import`: many existing resources at once, in "epsilon", an environment (and sandbox
account) only this file uses, with real processes in eager mode (each import runs in the
command's own process, as it would with no worker needed)."""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from containers.settings import KrpSettings
from provisioning.cloud import CloudClients
from provisioning.models import DryRun, Resource, ResourceRequest, ResourceStatus
from tests.cli import run_krp
from tests.fixtures.provisioning import unique_name
from tests.settings import SANDBOX_URL

pytestmark = pytest.mark.django_db(transaction=True)

REGION = "ap-northeast-2"
# Every call still takes a token of epsilon's call budget; at the default 20 calls/s the 50
# imports (about 15 calls each) would mostly measure the budget, which tests of its own cover.
EPSILON = {"KRP_TASK_MODE": "eager", "KRP_ENVIRONMENTS": json.dumps({"epsilon": {
    "account_id": "555555555555", "region": REGION, "endpoint_url": SANDBOX_URL,
    "role_arn": "arn:aws:iam::555555555555:role/krp-provisioner",
    "api_calls_per_second": 1000}})}


@pytest.fixture
def epsilon(sandbox) -> CloudClients:
    return CloudClients(KrpSettings.from_environ({**os.environ, **EPSILON}))


def buckets_by_hand(epsilon: CloudClients, count: int, stem: str) -> list[str]:
    """Buckets as AWS makes them today (SSE-S3 and public access blocked by default; the
    sandbox does neither on its own)."""
    s3 = epsilon.client("epsilon", "s3")
    names = [unique_name(stem) for _ in range(count)]

    def make(name: str) -> None:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            key: True for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                  "RestrictPublicBuckets")})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, names))
    return names


def krp_import(*args: str):
    return run_krp("import", "--user", "rita", "--env", "epsilon", *args, env=EPSILON,
                   timeout=600)


def test_fifty_untagged_buckets_are_imported_and_a_second_run_imports_nothing(
    requester, epsilon
):
    names = buckets_by_hand(epsilon, 50, "bulk")

    first = krp_import("--type", "s3_bucket", "--all-untagged")

    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.strip().endswith("epsilon s3_bucket: 50 imported")
    assert "[50/50]" in first.stderr
    imported = Resource.objects.filter(environment="epsilon", physical_name__in=names)
    assert imported.count() == 50
    assert set(imported.values_list("status", flat=True)) == {ResourceStatus.ACTIVE}
    s3 = epsilon.client("epsilon", "s3")
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=names[0])["TagSet"]}
    assert (tags["krp:environment"], tags["krp:managed-by"]) == ("epsilon", "krp")

    again = krp_import("--type", "s3_bucket", "--all-untagged")

    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip() == "epsilon: no s3_bucket to import"
    assert Resource.objects.filter(environment="epsilon", physical_name__in=names).count() == 50


def test_named_imports_report_each_and_exit_non_zero_when_one_fails(requester, epsilon):
    [there] = buckets_by_hand(epsilon, 1, "named")
    missing = unique_name("nowhere")

    done = krp_import("--type", "s3_bucket", "--names", f"{there},{missing}")

    assert done.returncode != 0
    assert "epsilon s3_bucket: 1 failed, 1 imported" in done.stdout
    assert f"1 not imported: {missing}" in done.stderr
    assert Resource.objects.filter(environment="epsilon", physical_name=there).exists()

    again = krp_import("--type", "s3_bucket", "--names", there)
    assert again.returncode == 0, again.stderr
    assert "1 already managed" in again.stdout


def test_plan_shows_what_each_import_would_take_over_and_records_nothing(requester, epsilon):
    names = buckets_by_hand(epsilon, 2, "planned")
    epsilon.client("epsilon", "s3").put_bucket_tagging(Bucket=names[0], Tagging={"TagSet": [
        {"Key": "batch", "Value": "7"}]})

    done = krp_import("--type", "s3_bucket", "--tag", "batch=7", "--plan")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].startswith(f"will import s3_bucket {names[0]} as epsilon/")
    assert names[1] not in done.stdout
    assert "epsilon s3_bucket: 1 planned" in done.stdout
    assert not ResourceRequest.objects.filter(environment="epsilon",
                                              physical_name__in=names).exists()
    assert DryRun.objects.filter(environment="epsilon", action="import").count() == 1
