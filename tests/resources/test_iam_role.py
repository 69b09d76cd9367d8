"""iam_role's provisioner against the sandbox: path, trust, policies, refusals, idempotency."""

import json
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from provisioning.errors import Conflict, InvalidRequest
from provisioning.resources.iam_role import IamRole, _trusted_service
from tests.fixtures.provisioning import make_context, unique_name

iam_role = IamRole()

READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
S3_READ_ONLY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
LAMBDA_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
READ_QUEUE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
         "Resource": "arn:aws:sqs:ap-northeast-2:111111111111:jobs"}
    ],
}


def context(krp_settings, cloud, name, **kwargs):
    kwargs.setdefault("spec", {"trusted_service": "lambda.amazonaws.com"})
    return make_context(krp_settings, cloud, kind=iam_role, name=name, **kwargs)


def krp_roles(cloud, environment):
    """Role names under KRP's path: how KRP lists its roles (the Tagging API shows none)."""
    pages = cloud.client(environment, "iam").get_paginator("list_roles").paginate(
        PathPrefix="/krp/"
    )
    return [role["RoleName"] for page in pages for role in page["Roles"]]


def test_role_is_created_under_krps_path_with_its_trust_policies_and_tags(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("worker"), tags={"cost-centre": "42"})
    spec = iam_role.parse_spec({
        "trusted_service": "lambda.amazonaws.com",
        "managed_policy_arns": [LAMBDA_BASIC, READ_ONLY],
        "inline_policy": READ_QUEUE,
        "description": "runs the nightly job",
        "max_session_duration_seconds": 7200,
    })

    observed = iam_role.create(ctx, spec)

    # IAM is global: its ARNs carry the account and no region.
    assert observed.arn == f"arn:aws:iam::111111111111:role/krp/{ctx.physical_name}"
    assert observed.physical_id == ctx.physical_name
    assert observed.extra_outputs["role_name"] == ctx.physical_name
    assert observed.extra_outputs["role_id"].startswith("AROA")
    assert observed.settings == iam_role.expected_settings(spec)
    assert observed.settings == {
        "trusted_service": "lambda.amazonaws.com",
        "managed_policy_arns": [READ_ONLY, LAMBDA_BASIC],  # sorted, as IAM keeps a set
        "inline_policy": READ_QUEUE,
        "description": "runs the nightly job",
        "max_session_duration_seconds": 7200,
    }
    assert observed.tags["cost-centre"] == "42"
    assert observed.tags["krp:request-id"] == ctx.creating_request_id
    assert observed.tags["krp:managed-by"] == "krp"
    assert ctx.physical_name in krp_roles(cloud, "alpha")


def test_role_lands_in_its_environments_account_only(krp_settings, cloud):
    alpha = context(krp_settings, cloud, unique_name("iso"))
    iam_role.create(alpha, iam_role.parse_spec({"trusted_service": "ecs-tasks.amazonaws.com"}))

    assert alpha.physical_name not in krp_roles(cloud, "prod")


def test_repeating_create_adopts_the_role_instead_of_failing(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("again"))
    spec = iam_role.parse_spec({"trusted_service": "lambda.amazonaws.com",
                                "managed_policy_arns": [READ_ONLY]})
    first = iam_role.create(ctx, spec)

    second = iam_role.create(ctx, spec)

    assert second.arn == first.arn
    assert second.extra_outputs["role_id"] == first.extra_outputs["role_id"]
    assert krp_roles(cloud, "alpha").count(ctx.physical_name) == 1


def test_create_refuses_a_role_that_another_request_owns(krp_settings, cloud):
    name = unique_name("taken")
    spec = iam_role.parse_spec({"trusted_service": "lambda.amazonaws.com"})
    iam_role.create(context(krp_settings, cloud, name), spec)

    with pytest.raises(Conflict, match="belongs to KRP request"):
        iam_role.create(context(krp_settings, cloud, name), spec)


def test_untagged_role_is_adopted_only_by_the_attempt_that_recorded_its_name(
    krp_settings, cloud
):
    name = unique_name("crash")
    ctx = context(krp_settings, cloud, name)
    cloud.client("alpha", "iam").create_role(
        RoleName=ctx.physical_name, Path="/krp/", AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": []}
        ),
    )
    spec = iam_role.parse_spec({"trusted_service": "lambda.amazonaws.com"})

    with pytest.raises(Conflict, match="not managed by KRP"):
        iam_role.create(ctx, spec)
    retry = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                    earlier_attempt=True)
    adopted = iam_role.create(retry, spec)
    assert adopted.tags["krp:request-id"] == ctx.creating_request_id
    assert adopted.settings["trusted_service"] == "lambda.amazonaws.com"


def test_update_changes_trust_policies_settings_and_tags(krp_settings, cloud):
    name = unique_name("upd")
    ctx = context(krp_settings, cloud, name, tags={"owner": "payments", "stage": "beta"})
    iam_role.create(ctx, iam_role.parse_spec({
        "trusted_service": "lambda.amazonaws.com",
        "managed_policy_arns": [READ_ONLY, LAMBDA_BASIC],
        "inline_policy": READ_QUEUE,
        "description": "old",
    }))
    retagged = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                       tags={"owner": "search"})
    spec = iam_role.parse_spec({
        "trusted_service": "ecs-tasks.amazonaws.com",
        "managed_policy_arns": [S3_READ_ONLY, LAMBDA_BASIC],
        "max_session_duration_seconds": 43200,
    })

    observed = iam_role.update(retagged, spec)

    assert observed.settings == iam_role.expected_settings(spec)
    assert observed.settings["managed_policy_arns"] == [S3_READ_ONLY, LAMBDA_BASIC]
    assert observed.settings["inline_policy"] is None
    assert observed.settings["description"] == ""
    assert observed.tags["owner"] == "search"
    assert "stage" not in observed.tags
    assert observed.tags["krp:request-id"] == ctx.creating_request_id


def test_customer_managed_policy_of_the_account_is_attached(krp_settings, cloud):
    policy = cloud.client("alpha", "iam").create_policy(
        PolicyName=unique_name("queue-reader"), PolicyDocument=json.dumps(READ_QUEUE)
    )["Policy"]["Arn"]
    ctx = context(krp_settings, cloud, unique_name("own"))

    observed = iam_role.create(ctx, iam_role.parse_spec(
        {"trusted_service": "lambda.amazonaws.com", "managed_policy_arns": [policy]}
    ))

    assert policy.startswith("arn:aws:iam::111111111111:policy/")
    assert observed.settings["managed_policy_arns"] == [policy]


def test_attaching_a_policy_that_does_not_exist_fails_with_no_such_entity(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("nopol"))
    spec = iam_role.parse_spec({
        "trusted_service": "lambda.amazonaws.com",
        "managed_policy_arns": ["arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"],
    })

    with pytest.raises(ClientError) as raised:
        iam_role.create(ctx, spec)

    assert raised.value.response["Error"]["Code"] == "NoSuchEntity"


def test_delete_detaches_everything_and_a_second_delete_succeeds(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("gone"))
    iam_role.create(ctx, iam_role.parse_spec({
        "trusted_service": "ec2.amazonaws.com",
        "managed_policy_arns": [READ_ONLY],
        "inline_policy": READ_QUEUE,
    }))
    iam = cloud.client("alpha", "iam")
    iam.put_role_policy(RoleName=ctx.physical_name, PolicyName="added-by-hand",
                        PolicyDocument=json.dumps(READ_QUEUE))
    profile = unique_name("profile")
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=ctx.physical_name)

    iam_role.delete(ctx)
    iam_role.delete(ctx)

    assert iam_role.describe(ctx) is None
    assert ctx.physical_name not in krp_roles(cloud, "alpha")
    assert iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"] == []
    iam.delete_instance_profile(InstanceProfileName=profile)


def test_delete_refuses_a_role_that_another_request_owns(krp_settings, cloud):
    name = unique_name("notmine")
    iam_role.create(context(krp_settings, cloud, name),
                    iam_role.parse_spec({"trusted_service": "lambda.amazonaws.com"}))

    with pytest.raises(Conflict, match="belongs to KRP request"):
        iam_role.delete(context(krp_settings, cloud, name))


def test_allow_of_everything_on_everything_is_refused():
    for action, resource in [("*", "*"), (["s3:GetObject", "*"], "*"), ("*", ["arn:x", "*"])]:
        document = {"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}
        with pytest.raises(InvalidRequest, match=r"spec\.inline_policy: Statement\[0\] allows "
                                                 r"every action"):
            iam_role.parse_spec({"trusted_service": "lambda.amazonaws.com",
                                 "inline_policy": document})


def test_narrower_wildcards_and_broad_denies_are_accepted():
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::krp-alpha-logs/*"},
        {"Sid": "OnlyHere", "Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:RequestedRegion": "ap-northeast-2"}}},
    ]}

    spec = iam_role.parse_spec({"trusted_service": "lambda.amazonaws.com",
                                "inline_policy": document})

    assert spec.inline_policy == document


def statement(**fields):
    return {"trusted_service": "lambda.amazonaws.com",
            "inline_policy": {"Version": "2012-10-17", "Statement": [fields]}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "spec.trusted_service: Field required"),
        ({"trusted_service": "lambda"}, "spec.trusted_service: must be an AWS service principal"),
        ({"trusted_service": "Lambda.amazonaws.com"}, "spec.trusted_service: must be an AWS"),
        ({"trusted_service": "lambda.amazonaws.com", "managed_policy_arns": ["ReadOnlyAccess"]},
         r"spec.managed_policy_arns\[0\]: must be a managed policy\'s ARN"),
        ({"trusted_service": "lambda.amazonaws.com",
          "managed_policy_arns": ["arn:aws:iam::12345:policy/x"]},
         r"spec.managed_policy_arns\[0\]: must be a managed policy\'s ARN"),
        ({"trusted_service": "lambda.amazonaws.com",
          "managed_policy_arns": [f"arn:aws:iam::111111111111:policy/p{i}" for i in range(11)]},
         "spec.managed_policy_arns: List should have at most 10 items"),
        ({"trusted_service": "lambda.amazonaws.com", "managed_policy_arns": [READ_ONLY] * 2},
         "spec.managed_policy_arns: each policy may be listed once"),
        ({"trusted_service": "lambda.amazonaws.com", "description": "x" * 1001},
         "spec.description: String should have at most 1000 characters"),
        ({"trusted_service": "lambda.amazonaws.com", "description": "emoji \U0001f600"},
         "spec.description: may hold only printable Latin-1 characters"),
        ({"trusted_service": "lambda.amazonaws.com", "max_session_duration_seconds": 3599},
         "spec.max_session_duration_seconds: Input should be greater than or equal to 3600"),
        ({"trusted_service": "lambda.amazonaws.com", "max_session_duration_seconds": 43201},
         "spec.max_session_duration_seconds: Input should be less than or equal to 43200"),
        ({"trusted_service": "lambda.amazonaws.com", "max_session_duration_seconds": "3600"},
         "spec.max_session_duration_seconds: Input should be a valid integer"),
        ({"trusted_service": "lambda.amazonaws.com", "inline_policy": "s3:*"},
         "spec.inline_policy: Input should be a JSON object"),
        ({"trusted_service": "lambda.amazonaws.com", "inline_policy": {"Statement": []}},
         'spec.inline_policy: "Version" must be "2012-10-17"'),
        ({"trusted_service": "lambda.amazonaws.com",
          "inline_policy": {"Version": "2012-10-17", "Statement": []}},
         'spec.inline_policy: "Statement" must be a non-empty list'),
        ({"trusted_service": "lambda.amazonaws.com",
          "inline_policy": {"Version": "2012-10-17", "Statement": ["s3:*"]}},
         r"spec.inline_policy: Statement\[0\] must be an object"),
        (statement(Effect="Permit", Action="s3:*", Resource="*"),
         r'spec.inline_policy: Statement\[0\].Effect must be "Allow" or "Deny"'),
        (statement(Effect="Allow", Resource="*"),
         r"spec.inline_policy: Statement\[0\] needs exactly one of Action and NotAction"),
        (statement(Effect="Allow", Action=["s3:GetObject", 7], Resource="*"),
         r"spec.inline_policy: Statement\[0\].Action must be a string or a list of strings"),
        (statement(Effect="Allow", Action="s3:GetObject", Resource=[]),
         r"spec.inline_policy: Statement\[0\].Resource must be a string or a list"),
        (statement(Effect="Allow", Action="s3:GetObject", Resource="*", Principal="*"),
         r"spec.inline_policy: Statement\[0\] has unknown keys Principal; allowed: Action, "),
        (statement(Effect="Allow", NotAction="iam:*", Resource="*"),
         r"spec.inline_policy: Statement\[0\]: NotAction in an Allow statement is too broad"),
        (statement(Effect="Allow", Action="s3:GetObject", NotResource="arn:aws:s3:::secret"),
         r"spec.inline_policy: Statement\[0\]: NotResource in an Allow statement is too broad"),
        ({"trusted_service": "lambda.amazonaws.com", "colour": "blue"},
         "spec.colour: Extra inputs are not permitted"),
    ],
)
def test_bad_spec_is_refused_naming_the_field(spec, message):
    with pytest.raises(InvalidRequest, match=message):
        iam_role.parse_spec(spec)


def test_name_too_long_for_iam_is_refused_naming_the_name():
    spec = iam_role.parse_spec({"trusted_service": "lambda.amazonaws.com"})
    assert len(iam_role.physical_name(prefix="krp", environment="alpha", name="x" * 40,
                                      spec=spec)) == 50

    with pytest.raises(InvalidRequest, match="name: .* IAM allows 64"):
        iam_role.physical_name(prefix="k" * 16, environment="staging-europe", name="x" * 40,
                               spec=spec)


def test_trusted_service_is_read_from_a_trust_policy_as_dict_or_url_encoded_json():
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
         "Action": "sts:AssumeRole"}]}

    assert _trusted_service(document) == "lambda.amazonaws.com"
    assert _trusted_service(urllib.parse.quote(json.dumps(document))) == "lambda.amazonaws.com"
    assert _trusted_service({"Version": "2012-10-17", "Statement": []}) is None
