"""s3_bucket's provisioner against the sandbox: region, privacy, encryption, idempotency."""

import pytest

from provisioning.errors import Conflict, InvalidRequest
from provisioning.resources import resource_type
from tests.fixtures.provisioning import make_context, unique_name

s3_bucket = resource_type("s3_bucket")


def context(krp_settings, cloud, name, **kwargs):
    return make_context(krp_settings, cloud, kind=s3_bucket, name=name, **kwargs)


def test_bucket_is_created_private_encrypted_and_in_the_environments_region(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("logs"), tags={"cost-centre": "42"})
    spec = s3_bucket.parse_spec({"versioning": True, "lifecycle_expiration_days": 30})

    observed = s3_bucket.create(ctx, spec)

    assert observed.arn == f"arn:aws:s3:::{ctx.physical_name}"
    assert observed.extra_outputs["region"] == "ap-northeast-2"
    assert observed.settings == {
        "versioning": True,
        "lifecycle_expiration_days": 30,
        "encryption": "AES256",
        "public_access_blocked": True,
    }
    assert observed.tags["cost-centre"] == "42"
    assert observed.tags["krp:request-id"] == ctx.creating_request_id
    assert observed.tags["krp:managed-by"] == "krp"


def test_bucket_lands_in_its_environments_account_only(krp_settings, cloud):
    name = unique_name("data")
    alpha = context(krp_settings, cloud, name)
    s3_bucket.create(alpha, s3_bucket.parse_spec({}))

    prod = cloud.client("prod", "s3").list_buckets()["Buckets"]
    assert alpha.physical_name not in [bucket["Name"] for bucket in prod]


def test_repeating_create_adopts_the_bucket_instead_of_failing(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("again"))
    spec = s3_bucket.parse_spec({})
    first = s3_bucket.create(ctx, spec)

    second = s3_bucket.create(ctx, spec)

    assert second.arn == first.arn
    names = [b["Name"] for b in cloud.client("alpha", "s3").list_buckets()["Buckets"]]
    assert names.count(ctx.physical_name) == 1


def test_create_refuses_a_bucket_that_another_request_owns(krp_settings, cloud):
    name = unique_name("taken")
    s3_bucket.create(context(krp_settings, cloud, name), s3_bucket.parse_spec({}))

    with pytest.raises(Conflict, match="belongs to KRP request"):
        s3_bucket.create(context(krp_settings, cloud, name), s3_bucket.parse_spec({}))


def test_untagged_bucket_is_adopted_only_by_the_attempt_that_recorded_its_name(
    krp_settings, cloud
):
    name = unique_name("crash")
    ctx = context(krp_settings, cloud, name)
    cloud.client("alpha", "s3").create_bucket(
        Bucket=ctx.physical_name,
        CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"},
    )

    with pytest.raises(Conflict, match="not managed by KRP"):
        s3_bucket.create(ctx, s3_bucket.parse_spec({}))
    retry = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                    earlier_attempt=True)
    assert s3_bucket.create(retry, s3_bucket.parse_spec({})).tags["krp:request-id"] == (
        ctx.creating_request_id
    )


def test_update_changes_versioning_lifecycle_and_tags(krp_settings, cloud):
    name = unique_name("upd")
    ctx = context(krp_settings, cloud, name)
    s3_bucket.create(ctx, s3_bucket.parse_spec({"versioning": True}))
    retagged = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                       tags={"owner": "payments"})

    observed = s3_bucket.update(
        retagged, s3_bucket.parse_spec({"lifecycle_expiration_days": 7, "encryption": "aws:kms"})
    )

    assert observed.settings["versioning"] is False
    assert observed.settings["lifecycle_expiration_days"] == 7
    assert observed.settings["encryption"] == "aws:kms"
    assert observed.tags["owner"] == "payments"


def test_delete_removes_the_bucket_and_a_second_delete_succeeds(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("gone"))
    s3_bucket.create(ctx, s3_bucket.parse_spec({}))

    s3_bucket.delete(ctx)
    s3_bucket.delete(ctx)

    assert s3_bucket.describe(ctx) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"versioning": "yes"}, "spec.versioning: Input should be a valid boolean"),
        ({"lifecycle_expiration_days": 0}, "spec.lifecycle_expiration_days: Input should be"),
        ({"encryption": "rot13"}, "spec.encryption: Input should be 'AES256' or 'aws:kms'"),
        ({"colour": "blue"}, "spec.colour: Extra inputs are not permitted"),
    ],
)
def test_bad_spec_is_refused_naming_the_field(spec, message):
    with pytest.raises(InvalidRequest, match=message):
        s3_bucket.parse_spec(spec)


@pytest.mark.parametrize("name", ["Logs", "a", "-logs", "logs-", "logs_2", "x" * 41, 42])
def test_bad_name_is_refused(name):
    with pytest.raises(InvalidRequest, match="name: "):
        s3_bucket.validate_name(name)
