"""Import's resource-type layer against the sandbox: a resource made by hand (boto3, not
KRP) gives a spec that states exactly what it holds, a setting no spec can state is
refused (not_importable) by name, and an imported resource gets its physical and KRP names.
"""

import dataclasses
import json

import pytest

from provisioning.errors import InvalidRequest
from provisioning.resources import resource_type
from tests.fixtures.provisioning import make_context, unique_name

ACCOUNT, REGION = "111111111111", "ap-northeast-2"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Sid": "", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
     "Action": "sts:AssumeRole"}]}
READ_QUEUE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["sqs:ReceiveMessage"],
     "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs"}]}


def described(krp_settings, cloud, type_name, physical_name, references=None):
    """describe() of the resource called `physical_name`, as an import's worker sees it."""
    kind = resource_type(type_name)
    ctx = make_context(krp_settings, cloud, kind=kind, name="imported",
                       spec=kind.example_spec, references=references)
    observed = kind.describe(dataclasses.replace(ctx, physical_name=physical_name))
    assert observed is not None, physical_name
    return kind, observed


def queue(cloud, name, **attributes):
    """A queue made by hand; its ARN."""
    sqs = cloud.client("alpha", "sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]


def bucket(cloud, *, public_access_blocked=True):
    s3, name = cloud.client("alpha", "s3"), unique_name("hand-made")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if public_access_blocked:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            key: True for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                  "RestrictPublicBuckets")})
    return s3, name


def expire(s3, name, rule_id, days):
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [
        {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": ""},
         "Expiration": {"Days": days}}]})


def encrypt(s3, name, **default):
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": default}]})


def versioned_kms_bucket(cloud):
    s3, name = bucket(cloud)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    encrypt(s3, name, SSEAlgorithm="aws:kms")
    expire(s3, name, "krp-expiration", 90)  # the rule as KRP names it
    return "s3_bucket", name, None, {
        "versioning": True, "lifecycle_expiration_days": 90, "encryption": "aws:kms"}


def queue_with_dlq(cloud):
    name = unique_name("hand-made")
    dlq = queue(cloud, f"{name}-dlq")
    queue(cloud, name, VisibilityTimeout="120", DelaySeconds="10",
          MessageRetentionPeriod="86400",
          RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq, "maxReceiveCount": 4}))
    return "sqs_queue", name, None, {
        "fifo": False, "content_based_deduplication": False,
        "visibility_timeout_seconds": 120, "message_retention_seconds": 86400,
        "delay_seconds": 10, "dead_letter_queue": {"max_receive_count": 4}}


def fifo_queue_with_dlq(cloud):
    name = unique_name("hand-made")
    dlq = queue(cloud, f"{name}-dlq.fifo", FifoQueue="true")
    queue(cloud, f"{name}.fifo", FifoQueue="true", ContentBasedDeduplication="true",
          RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq, "maxReceiveCount": 2}))
    return "sqs_queue", f"{name}.fifo", None, {
        "fifo": True, "content_based_deduplication": True, "visibility_timeout_seconds": 30,
        "message_retention_seconds": 345600, "delay_seconds": 0,
        "dead_letter_queue": {"max_receive_count": 2}}


def fifo_topic_with_raw_subscription(cloud):
    sns, name = cloud.client("alpha", "sns"), unique_name("hand-made") + ".fifo"
    topic = sns.create_topic(Name=name, Attributes={
        "FifoTopic": "true", "ContentBasedDeduplication": "true",
        "DisplayName": "Orders"})["TopicArn"]
    orders = queue(cloud, unique_name("orders") + ".fifo", FifoQueue="true")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=orders,
                  Attributes={"RawMessageDelivery": "true"})
    return "sns_topic", name, {("sqs_queue", "orders"): orders}, {
        "fifo": True, "content_based_deduplication": True, "display_name": "Orders",
        "subscriptions": [{"queue": "orders", "raw_message_delivery": True}]}


def provisioned_table_with_sort_key(cloud):
    dynamodb, name = cloud.client("alpha", "dynamodb"), unique_name("Hand_Made")
    dynamodb.create_table(
        TableName=name, BillingMode="PROVISIONED", DeletionProtectionEnabled=True,
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "at", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "at", "KeyType": "RANGE"}])
    dynamodb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    return "dynamodb_table", name, None, {
        "partition_key": {"name": "pk", "type": "S"}, "sort_key": {"name": "at", "type": "N"},
        "billing_mode": "PROVISIONED", "read_capacity": 5, "write_capacity": 7,
        "point_in_time_recovery": True, "deletion_protection": True}


def role(cloud, *, trust=TRUST_LAMBDA, inline_name="krp-inline"):
    iam, name = cloud.client("alpha", "iam"), unique_name("Hand_Made")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                    Description="made by hand", MaxSessionDuration=7200)
    iam.attach_role_policy(RoleName=name, PolicyArn=READ_ONLY)
    iam.put_role_policy(RoleName=name, PolicyName=inline_name,
                        PolicyDocument=json.dumps(READ_QUEUE))
    return name


def role_with_both_policies(cloud):
    return "iam_role", role(cloud), None, {
        "trusted_service": "lambda.amazonaws.com", "managed_policy_arns": [READ_ONLY],
        "inline_policy": READ_QUEUE, "description": "made by hand",
        "max_session_duration_seconds": 7200}


@pytest.mark.parametrize("make", [
    versioned_kms_bucket, queue_with_dlq, fifo_queue_with_dlq,
    fifo_topic_with_raw_subscription, provisioned_table_with_sort_key, role_with_both_policies,
])
def test_a_hand_made_resource_gives_the_spec_that_states_what_it_holds(
    krp_settings, cloud, make
):
    type_name, physical_name, references, wanted = make(cloud)
    kind, observed = described(krp_settings, cloud, type_name, physical_name, references)

    spec = kind.spec_from(observed)

    assert spec == wanted
    assert json.loads(json.dumps(spec)) == spec
    # So neither reconcile nor a plan of this spec finds anything to change.
    assert kind.expected_settings(kind.parse_spec(spec)) == observed.settings


@pytest.mark.parametrize("make", [
    versioned_kms_bucket, queue_with_dlq, fifo_queue_with_dlq, fifo_topic_with_raw_subscription,
    provisioned_table_with_sort_key, role_with_both_policies,
])
def test_applying_an_imported_resources_spec_changes_none_of_its_settings(
    krp_settings, cloud, make
):
    type_name, physical_name, references, _ = make(cloud)
    kind, before = described(krp_settings, cloud, type_name, physical_name, references)
    ctx = make_context(krp_settings, cloud, kind=kind, name="imported",
                       spec=kind.example_spec, references=references,
                       # what is there was not made by a KRP request: let update adopt it
                       earlier_attempt=True)

    after = kind.update(dataclasses.replace(ctx, physical_name=physical_name),
                        kind.parse_spec(kind.spec_from(before)))

    assert after.settings == before.settings
    assert after.tags == ctx.tags


def foreign_lifecycle_rule(cloud):
    s3, name = bucket(cloud)
    expire(s3, name, "archive-logs", 30)
    return "s3_bucket", name, None, "spec.lifecycle_expiration_days", "archive-logs"


def kms_key(cloud):
    s3, name = bucket(cloud)
    encrypt(s3, name, SSEAlgorithm="aws:kms", KMSMasterKeyID="alias/billing")
    return "s3_bucket", name, None, "spec.encryption", "alias/billing"


def public_access(cloud):
    s3, name = bucket(cloud, public_access_blocked=False)
    encrypt(s3, name, SSEAlgorithm="AES256")
    return "s3_bucket", name, None, "spec.public_access_blocked", "not fully blocked"


def redrive_elsewhere(cloud):
    name = unique_name("hand-made")
    elsewhere = queue(cloud, unique_name("shared-failures"))
    queue(cloud, name,
          RedrivePolicy=json.dumps({"deadLetterTargetArn": elsewhere, "maxReceiveCount": 3}))
    return "sqs_queue", name, None, "spec.dead_letter_queue", elsewhere


def subscription_to_an_unmanaged_queue(cloud):
    sns, name = cloud.client("alpha", "sns"), unique_name("hand-made")
    topic = sns.create_topic(Name=name)["TopicArn"]
    stranger = queue(cloud, unique_name("stranger"))
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=stranger)
    return "sns_topic", name, {}, "spec.subscriptions", stranger


def secondary_index(cloud):
    dynamodb, name = cloud.client("alpha", "dynamodb"), unique_name("hand-made")
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "email", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-email", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}]}])
    return "dynamodb_table", name, None, "spec.indexes", "by-email"


def inline_policy_of_its_own_name(cloud):
    return "iam_role", role(cloud, inline_name="read-jobs"), None, "spec.inline_policy", \
        "read-jobs"


def trust_with_a_condition(cloud):
    statement = {**TRUST_LAMBDA["Statement"][0],
                 "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
    name = role(cloud, trust={**TRUST_LAMBDA, "Statement": [statement]})
    return "iam_role", name, None, "spec.trusted_service", "lambda.amazonaws.com"


def no_default_encryption(cloud):
    _, name = bucket(cloud)
    return "s3_bucket", name, None, "spec.encryption", "none"


@pytest.mark.parametrize("make", [
    foreign_lifecycle_rule, kms_key, public_access, no_default_encryption, redrive_elsewhere,
    subscription_to_an_unmanaged_queue, secondary_index, inline_policy_of_its_own_name,
    trust_with_a_condition,
])
def test_a_setting_no_spec_can_state_is_refused_by_name(krp_settings, cloud, make):
    type_name, physical_name, references, field, detail = make(cloud)
    kind, observed = described(krp_settings, cloud, type_name, physical_name, references)

    with pytest.raises(InvalidRequest) as refused:
        kind.spec_from(observed)

    assert refused.value.code == "not_importable"
    assert list(refused.value.fields) == [field]
    assert detail in refused.value.message


def test_a_value_out_of_the_specs_range_is_refused_by_name(krp_settings, cloud):
    name = unique_name("hand-made")
    queue(cloud, name, VisibilityTimeout="60")
    kind, observed = described(krp_settings, cloud, "sqs_queue", name)
    observed = dataclasses.replace(
        observed, settings={**observed.settings, "dead_letter_queue": {"max_receive_count": 0}})

    with pytest.raises(InvalidRequest) as refused:
        kind.spec_from(observed)

    assert refused.value.code == "not_importable"
    assert list(refused.value.fields) == ["spec.dead_letter_queue.max_receive_count"]


@pytest.mark.parametrize(("type_name", "given", "physical_name"), [
    ("s3_bucket", "invoices-2019", "invoices-2019"),
    ("s3_bucket", "arn:aws:s3:::invoices-2019", "invoices-2019"),
    ("sqs_queue", f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs.fifo", "jobs.fifo"),
    ("sqs_queue", f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/jobs", "jobs"),
    ("sns_topic", f"arn:aws:sns:{REGION}:{ACCOUNT}:Order_Updates", "Order_Updates"),
    ("dynamodb_table", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Sessions", "Sessions"),
    ("iam_role", f"arn:aws:iam::{ACCOUNT}:role/service-role/builder", "builder"),
    ("iam_role", "builder", "builder"),
])
def test_import_takes_a_resource_by_its_name_or_its_arn(type_name, given, physical_name):
    kind = resource_type(type_name)

    assert kind.import_name(given, prefix="krp", environment="alpha") == physical_name


@pytest.mark.parametrize(("type_name", "given"), [
    ("s3_bucket", f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs"),
    ("dynamodb_table", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Sessions/stream/x"),
    ("sns_topic", ""),
])
def test_import_refuses_what_is_neither_a_name_nor_an_arn_of_the_type(type_name, given):
    with pytest.raises(InvalidRequest) as refused:
        resource_type(type_name).import_name(given, prefix="krp", environment="alpha")

    assert refused.value.code == "invalid_name"
    assert list(refused.value.fields) == ["physical_name"]


@pytest.mark.parametrize(("type_name", "physical_name", "name"), [
    ("s3_bucket", "krp-alpha-invoices", "invoices"),
    ("sqs_queue", "krp-alpha-jobs.fifo", "jobs"),
    ("s3_bucket", "Invoices.2019", "invoices-2019"),
    ("dynamodb_table", "Sessions_Table_", "sessions-table"),
    ("dynamodb_table", "krp-alpha-Sessions", "sessions"),
    ("sns_topic", "Order_Updates.fifo", "order-updates"),
    ("iam_role", "krp-beta-builder", "krp-beta-builder"),  # another environment's
])
def test_an_imported_resource_gets_a_krp_name(type_name, physical_name, name):
    kind = resource_type(type_name)

    assert kind.krp_name_for(physical_name, prefix="krp", environment="alpha") == name


@pytest.mark.parametrize("physical_name", ["2019-invoices", "x" * 41, "krp-alpha-"])
def test_a_physical_name_that_gives_no_krp_name_is_refused(physical_name):
    with pytest.raises(InvalidRequest) as refused:
        resource_type("s3_bucket").krp_name_for(physical_name, prefix="krp", environment="alpha")

    assert refused.value.code == "invalid_name"
    assert physical_name in refused.value.message
