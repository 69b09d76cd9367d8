"""The sandbox AWS: accounts kept apart, throttling answered in each protocol's shape, and new
DynamoDB tables reported CREATING for an injected delay."""

import time
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from provisioning.cloud import CloudClients, classify_cloud_error
from provisioning.errors import TransientCloudError

pytestmark = pytest.mark.usefixtures("sandbox")


def test_bucket_made_for_alpha_lands_in_alphas_account_and_is_invisible_to_prod(krp_settings):
    clients = CloudClients(krp_settings)
    name = f"krp-isolation-{uuid.uuid4().hex[:8]}"

    clients.client("alpha", "s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )

    alpha_buckets = [b["Name"] for b in clients.client("alpha", "s3").list_buckets()["Buckets"]]
    prod_buckets = [b["Name"] for b in clients.client("prod", "s3").list_buckets()["Buckets"]]
    assert name in alpha_buckets
    assert name not in prod_buckets
    identity = clients.client("alpha", "sts").get_caller_identity()
    assert identity["Account"] == "111111111111"


def one_shot(clients: CloudClients, environment: str, service: str):
    """A client that sends each call exactly once, so the test sees the raw answer."""
    env = clients._settings.environment(environment)
    return clients._session(env).client(
        service, region_name=env.region, endpoint_url=env.endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


@pytest.mark.parametrize(
    ("service", "signing_name", "call", "code"),
    [
        ("s3", "s3", lambda c: c.list_buckets(), "SlowDown"),
        ("sqs", "sqs", lambda c: c.list_queues(), "ThrottlingException"),
        ("dynamodb", "dynamodb", lambda c: c.list_tables(), "ThrottlingException"),
        ("iam", "iam", lambda c: c.list_roles(), "Throttling"),
        ("sns", "sns", lambda c: c.list_topics(), "Throttling"),
        (
            "resourcegroupstaggingapi",
            "tagging",
            lambda c: c.get_resources(ResourcesPerPage=1),
            "ThrottlingException",
        ),
    ],
)
def test_throttled_call_gets_the_services_own_throttling_error(
    sandbox_faults, krp_settings, service, signing_name, call, code
):
    clients = CloudClients(krp_settings)
    client = one_shot(clients, "alpha", service)
    call(client)  # assume the role before the sandbox starts refusing
    sandbox_faults.set_faults(throttle_rate=1.0, services=[signing_name])

    with pytest.raises(ClientError) as refused:
        call(client)

    assert refused.value.response["Error"]["Code"] == code
    assert isinstance(classify_cloud_error(refused.value), TransientCloudError)


def test_standard_retries_ride_out_occasional_throttling(sandbox_faults, krp_settings):
    clients = CloudClients(krp_settings, max_attempts=10)
    s3 = clients.client("alpha", "s3")
    s3.list_buckets()
    sandbox_faults.set_faults(throttle_rate=0.3, services=["s3"])

    for _ in range(10):
        s3.list_buckets()

    assert sandbox_faults._call("/_krp/calls")["throttled"].get("s3", 0) > 0


def test_bad_fault_settings_are_refused(sandbox):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as refused:
        sandbox.set_faults(throttle_rate=2)

    assert refused.value.code == 400
    assert b"throttle_rate must be between 0 and 1" in refused.value.read()


def test_new_dynamodb_table_is_reported_creating_for_the_injected_delay(
    sandbox_faults, krp_settings
):
    dynamodb = CloudClients(krp_settings).client("alpha", "dynamodb")
    name = f"krp-creating-{uuid.uuid4().hex[:8]}"
    sandbox_faults.set_faults(dynamodb_create_delay=2)
    try:
        created = dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        described = dynamodb.describe_table(TableName=name)["Table"]["TableStatus"]
        time.sleep(2.1)
        later = dynamodb.describe_table(TableName=name)["Table"]["TableStatus"]
    finally:
        sandbox_faults.set_faults(dynamodb_create_delay=0)

    assert created["TableDescription"]["TableStatus"] == "CREATING"
    assert described == "CREATING"
    assert later == "ACTIVE"


def test_dropped_call_takes_effect_and_botocore_sees_a_closed_connection(
    sandbox_faults, krp_settings
):
    from botocore.exceptions import ConnectionClosedError

    from provisioning.cloud import spends_time

    clients = CloudClients(krp_settings)
    s3 = one_shot(clients, "alpha", "s3")
    name = f"krp-dropped-{uuid.uuid4().hex[:8]}"
    sandbox_faults.set_faults(drop_rate=1.0, drop_actions=["CreateBucket"], services=["s3"])

    with pytest.raises(ConnectionClosedError) as dropped:
        s3.create_bucket(Bucket=name,
                         CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})

    # The load balancer dropped the answer, not the call: the bucket is there.
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    error = classify_cloud_error(dropped.value)
    assert isinstance(error, TransientCloudError) and spends_time(error)
    assert error.code == "NetworkError"


def test_denied_action_is_refused_in_each_protocols_shape(sandbox_faults, krp_settings):
    clients = CloudClients(krp_settings)
    sandbox_faults.set_faults(deny_actions=["DeleteBucket", "DeleteRole"])

    with pytest.raises(ClientError) as s3_refusal:
        one_shot(clients, "alpha", "s3").delete_bucket(Bucket="krp-anything")
    with pytest.raises(ClientError) as iam_refusal:
        one_shot(clients, "alpha", "iam").delete_role(RoleName="krp-anything")

    assert s3_refusal.value.response["Error"]["Code"] == "AccessDenied"
    assert iam_refusal.value.response["Error"]["Code"] == "AccessDenied"
