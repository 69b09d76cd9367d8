"""dynamodb_table's provisioner against the sandbox: keys, billing, backups, deletion
protection, waiting for ACTIVE, idempotency."""

import time

import pytest

from provisioning.errors import Conflict, InvalidRequest, PermanentCloudError, TransientCloudError
from provisioning.resources.dynamodb_table import DynamodbTable
from tests.fixtures.provisioning import make_context, unique_name

dynamodb_table = DynamodbTable()
KEYS = {"partition_key": {"name": "id", "type": "S"}}


def context(krp_settings, cloud, name, **kwargs):
    return make_context(krp_settings, cloud, kind=dynamodb_table, name=name, spec=KEYS, **kwargs)


def spec(**fields):
    return dynamodb_table.parse_spec({**KEYS, **fields})


def test_table_is_created_with_its_keys_billing_and_tags_in_the_environment(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("orders"), tags={"cost-centre": "42"})
    wanted = spec(
        sort_key={"name": "created", "type": "N"},
        billing_mode="PROVISIONED",
        read_capacity=5,
        write_capacity=2,
        point_in_time_recovery=True,
    )

    observed = dynamodb_table.create(ctx, wanted)

    assert observed.arn == (
        f"arn:aws:dynamodb:ap-northeast-2:111111111111:table/{ctx.physical_name}"
    )
    assert observed.physical_id == ctx.physical_name
    assert observed.extra_outputs == {"table_name": ctx.physical_name}
    assert observed.settings == dynamodb_table.expected_settings(wanted)
    assert observed.settings["sort_key"] == {"name": "created", "type": "N"}
    assert observed.tags["cost-centre"] == "42"
    assert observed.tags["krp:request-id"] == ctx.creating_request_id
    assert observed.tags["krp:managed-by"] == "krp"


def test_on_demand_table_has_no_capacity(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("ondemand"))

    observed = dynamodb_table.create(ctx, spec())

    assert observed.settings == {
        "partition_key": {"name": "id", "type": "S"},
        "sort_key": None,
        "billing_mode": "PAY_PER_REQUEST",
        "read_capacity": None,
        "write_capacity": None,
        "point_in_time_recovery": False,
        "deletion_protection": False,
    }


def test_table_lands_in_its_environments_account_only(krp_settings, cloud):
    alpha = context(krp_settings, cloud, unique_name("data"))
    dynamodb_table.create(alpha, spec())

    prod = cloud.client("prod", "dynamodb").list_tables()["TableNames"]
    assert alpha.physical_name not in prod


def test_create_waits_until_the_new_table_is_active(sandbox_faults, krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("slow"))
    sandbox_faults.set_faults(dynamodb_create_delay=2)
    try:
        started = time.monotonic()
        observed = dynamodb_table.create(ctx, spec(point_in_time_recovery=True))
        waited = time.monotonic() - started
        status = cloud.client("alpha", "dynamodb").describe_table(
            TableName=ctx.physical_name
        )["Table"]["TableStatus"]
    finally:
        sandbox_faults.set_faults(dynamodb_create_delay=0)

    assert status == "ACTIVE"
    assert waited >= 2
    assert observed.settings["point_in_time_recovery"] is True


def test_table_still_creating_at_the_deadline_is_a_transient_error(
    sandbox_faults, krp_settings, cloud
):
    impatient = DynamodbTable(active_wait_attempts=2, active_wait_delay=0.5)
    ctx = context(krp_settings, cloud, unique_name("stuck"))
    sandbox_faults.set_faults(dynamodb_create_delay=30)
    try:
        with pytest.raises(TransientCloudError, match="is not ACTIVE after 1 s") as refused:
            impatient.create(ctx, spec())
    finally:
        sandbox_faults.set_faults(dynamodb_create_delay=0)

    assert refused.value.code == "TableNotActive"
    # The retry finds the table its first attempt made and finishes the job.
    assert impatient.create(ctx, spec()).tags["krp:request-id"] == ctx.creating_request_id


def test_repeating_create_adopts_the_table_instead_of_failing(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("again"))
    first = dynamodb_table.create(ctx, spec())

    second = dynamodb_table.create(ctx, spec())

    assert second.arn == first.arn
    names = cloud.client("alpha", "dynamodb").list_tables()["TableNames"]
    assert names.count(ctx.physical_name) == 1


def test_create_refuses_a_table_that_another_request_owns(krp_settings, cloud):
    name = unique_name("taken")
    dynamodb_table.create(context(krp_settings, cloud, name), spec())

    with pytest.raises(Conflict, match="belongs to KRP request"):
        dynamodb_table.create(context(krp_settings, cloud, name), spec())


def test_untagged_table_is_adopted_only_by_the_attempt_that_recorded_its_name(
    krp_settings, cloud
):
    name = unique_name("crash")
    ctx = context(krp_settings, cloud, name)
    cloud.client("alpha", "dynamodb").create_table(
        TableName=ctx.physical_name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )

    with pytest.raises(Conflict, match="not managed by KRP"):
        dynamodb_table.create(ctx, spec())
    retry = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                    earlier_attempt=True)
    assert dynamodb_table.create(retry, spec()).tags["krp:request-id"] == ctx.creating_request_id


def test_update_changes_billing_backups_protection_and_tags(krp_settings, cloud):
    name = unique_name("upd")
    ctx = context(krp_settings, cloud, name, tags={"owner": "orders", "tier": "gold"})
    dynamodb_table.create(ctx, spec())
    retagged = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                       tags={"owner": "payments"})
    provisioned = spec(billing_mode="PROVISIONED", read_capacity=3, write_capacity=4,
                       point_in_time_recovery=True, deletion_protection=True)

    observed = dynamodb_table.update(retagged, provisioned)

    assert observed.settings == dynamodb_table.expected_settings(provisioned)
    assert observed.tags["owner"] == "payments"
    assert "tier" not in observed.tags

    on_demand = spec()
    back = dynamodb_table.update(retagged, on_demand)

    assert back.settings == dynamodb_table.expected_settings(on_demand)


def test_update_changes_provisioned_capacity(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("capacity"))
    dynamodb_table.create(ctx, spec(billing_mode="PROVISIONED", read_capacity=1,
                                    write_capacity=1))

    observed = dynamodb_table.update(
        ctx, spec(billing_mode="PROVISIONED", read_capacity=10, write_capacity=1)
    )

    assert (observed.settings["read_capacity"], observed.settings["write_capacity"]) == (10, 1)


def test_keys_cannot_change_after_creation():
    with pytest.raises(InvalidRequest, match="spec.partition_key: cannot change after creation"):
        dynamodb_table.check_update(
            spec(), dynamodb_table.parse_spec({"partition_key": {"name": "pk", "type": "S"}})
        )
    with pytest.raises(InvalidRequest, match="spec.sort_key: cannot change after creation"):
        dynamodb_table.check_update(spec(), spec(sort_key={"name": "at", "type": "N"}))


def test_delete_removes_the_table_and_a_second_delete_succeeds(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("gone"))
    dynamodb_table.create(ctx, spec())

    dynamodb_table.delete(ctx)
    dynamodb_table.delete(ctx)

    assert dynamodb_table.describe(ctx) is None


def test_delete_is_refused_while_deletion_protection_is_on(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("kept"))
    dynamodb_table.create(ctx, spec(deletion_protection=True))

    with pytest.raises(PermanentCloudError, match="deletion protection") as refused:
        dynamodb_table.delete(ctx)

    assert refused.value.code == "DeletionProtection"
    assert dynamodb_table.describe(ctx) is not None
    dynamodb_table.update(ctx, spec(deletion_protection=False))
    dynamodb_table.delete(ctx)
    assert dynamodb_table.describe(ctx) is None


def test_delete_refuses_a_table_that_another_request_owns(krp_settings, cloud):
    name = unique_name("theirs")
    dynamodb_table.create(context(krp_settings, cloud, name), spec())

    with pytest.raises(Conflict, match="belongs to KRP request"):
        dynamodb_table.delete(context(krp_settings, cloud, name))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "spec.partition_key: Field required"),
        ({"partition_key": {"name": "", "type": "S"}}, "spec.partition_key.name: String should"),
        ({"partition_key": {"name": "id", "type": "X"}}, "spec.partition_key.type: Input should"),
        ({"partition_key": {"name": "x" * 256, "type": "S"}}, "spec.partition_key.name: "),
        ({**KEYS, "sort_key": {"name": "id", "type": "N"}},
         "spec.sort_key: must name a different attribute than partition_key"),
        ({**KEYS, "billing_mode": "FREE"}, "spec.billing_mode: Input should be"),
        ({**KEYS, "billing_mode": "PROVISIONED", "write_capacity": 1},
         "spec.read_capacity: required when billing_mode is PROVISIONED"),
        ({**KEYS, "billing_mode": "PROVISIONED", "read_capacity": 1},
         "spec.write_capacity: required when billing_mode is PROVISIONED"),
        ({**KEYS, "read_capacity": 5},
         "spec.read_capacity: not allowed when billing_mode is PAY_PER_REQUEST"),
        ({**KEYS, "billing_mode": "PROVISIONED", "read_capacity": 0, "write_capacity": 1},
         "spec.read_capacity: Input should be greater than or equal to 1"),
        ({**KEYS, "point_in_time_recovery": "yes"},
         "spec.point_in_time_recovery: Input should be a valid boolean"),
        ({**KEYS, "deletion_protection": 1}, "spec.deletion_protection: Input should be"),
        ({**KEYS, "colour": "blue"}, "spec.colour: Extra inputs are not permitted"),
    ],
)
def test_bad_spec_is_refused_naming_the_field(fields, message):
    with pytest.raises(InvalidRequest, match=message):
        dynamodb_table.parse_spec(fields)


@pytest.mark.parametrize("name", ["Orders", "a", "-orders", "orders-", "orders_2", "x" * 41, 42])
def test_bad_name_is_refused(name):
    with pytest.raises(InvalidRequest, match="name: "):
        dynamodb_table.validate_name(name)


@pytest.mark.parametrize("prefix", ["krp!", "k" * 250])
def test_physical_name_outside_dynamodbs_rules_is_refused(prefix):
    with pytest.raises(InvalidRequest, match="not a valid DynamoDB table name"):
        dynamodb_table.physical_name(prefix=prefix, environment="alpha", name="orders",
                                     spec=spec())
