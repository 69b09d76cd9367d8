"""dynamodb_table: a DynamoDB table with a partition key, an optional sort key and its billing."""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar, Literal

from botocore.exceptions import ClientError
from pydantic import Field, ValidationInfo, field_validator

from containers.settings import EnvironmentSettings
from provisioning.errors import InvalidRequest, PermanentCloudError, TransientCloudError
from provisioning.resources.base import (
    Observed,
    ProvisionContext,
    ResourceType,
    SpecModel,
    error_code,
    tag_dict,
    tag_list,
)

TABLE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")


class KeyAttribute(SpecModel):
    name: str = Field(min_length=1, max_length=255, description="attribute name")
    type: Literal["S", "N", "B"] = Field(description="S (string), N (number) or B (binary)")


class DynamodbTableSpec(SpecModel):
    immutable_fields = frozenset({"partition_key", "sort_key"})

    partition_key: KeyAttribute = Field(description="the hash key of every item")
    sort_key: KeyAttribute | None = Field(default=None, description="the range key, if any")
    billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"] = Field(
        default="PAY_PER_REQUEST", description="on-demand, or provisioned read/write capacity"
    )
    # validate_default so that a missing capacity is refused for PROVISIONED, too.
    read_capacity: int | None = Field(
        default=None, ge=1, validate_default=True,
        description="read capacity units (PROVISIONED only)",
    )
    write_capacity: int | None = Field(
        default=None, ge=1, validate_default=True,
        description="write capacity units (PROVISIONED only)",
    )
    point_in_time_recovery: bool = Field(
        default=False, description="continuous backups, restorable to any second of 35 days"
    )
    deletion_protection: bool = Field(
        default=False, description="refuse to delete the table until this is turned off"
    )

    @field_validator("sort_key")
    @classmethod
    def _keys_differ(cls, sort_key: KeyAttribute | None, info: ValidationInfo):
        partition_key = info.data.get("partition_key")
        if sort_key is not None and partition_key is not None and (
            sort_key.name == partition_key.name
        ):
            raise ValueError("must name a different attribute than partition_key")
        return sort_key

    @field_validator("read_capacity", "write_capacity")
    @classmethod
    def _capacity_matches_billing(cls, capacity: int | None, info: ValidationInfo):
        billing_mode = info.data.get("billing_mode")
        if billing_mode == "PROVISIONED" and capacity is None:
            raise ValueError("required when billing_mode is PROVISIONED")
        if billing_mode == "PAY_PER_REQUEST" and capacity is not None:
            raise ValueError("not allowed when billing_mode is PAY_PER_REQUEST")
        return capacity


class DynamodbTable(ResourceType):
    name = "dynamodb_table"
    title = "DynamoDB table"
    spec_model = DynamodbTableSpec
    physical_name_limit = ("the name in AWS, <prefix>-<environment>-<name>, must fit "
                           "DynamoDB's 255 characters")
    example_name = "sessions"
    example_spec: ClassVar[dict[str, Any]] = {
        "partition_key": {"name": "session_id", "type": "S"},
        "sort_key": {"name": "created_at", "type": "N"},
        "point_in_time_recovery": True}
    arn_service = "dynamodb"
    extra_outputs = {"table_name": "the table's name"}
    arn_prefix = "table/"
    absent_codes = frozenset({"ResourceNotFoundException"})
    # A table that is CREATING, UPDATING or DELETING refuses changes until it settles.
    transient_codes = frozenset({"ResourceInUseException"})

    def __init__(self, *, active_wait_attempts: int = 180, active_wait_delay: float = 1.0):
        # A new table takes seconds to minutes to become ACTIVE; wait about three minutes,
        # then give the request back to be retried rather than hold the worker.
        self.active_wait_attempts = active_wait_attempts
        self.active_wait_delay = active_wait_delay

    def physical_name(self, *, prefix: str, environment: str, name: str, spec: Any) -> str:
        physical = super().physical_name(prefix=prefix, environment=environment, name=name,
                                         spec=spec)
        if not TABLE_NAME.match(physical):
            raise InvalidRequest.about(
                "name", f"{physical!r} is not a valid DynamoDB table name: use 3 to 255 "
                "letters, digits, dots, dashes and underscores",
                "invalid_name",
            )
        return physical

    def create(self, ctx: ProvisionContext, spec: DynamodbTableSpec) -> Observed:
        dynamodb = ctx.client("dynamodb")
        # CreateTable refuses a name in use (ResourceInUseException, handled below), so a
        # name KRP never used needs no look first.
        existing = None if ctx.first_use else self._table(dynamodb, ctx.physical_name)
        if existing is not None:
            ctx.claim(self._tags(dynamodb, existing["TableArn"]), "DynamoDB table")
        else:
            keys = [(spec.partition_key, "HASH")]
            if spec.sort_key is not None:
                keys.append((spec.sort_key, "RANGE"))
            kwargs: dict[str, Any] = {
                "TableName": ctx.physical_name,
                "AttributeDefinitions": [
                    {"AttributeName": key.name, "AttributeType": key.type} for key, _ in keys
                ],
                "KeySchema": [{"AttributeName": key.name, "KeyType": kind} for key, kind in keys],
                "DeletionProtectionEnabled": spec.deletion_protection,
                # Tagged in the same call: the tag is how a later attempt knows it is ours.
                "Tags": tag_list(ctx.tags),
                **self._billing_arguments(spec),
            }
            try:
                dynamodb.create_table(**kwargs)
            except ClientError as exc:
                # A concurrent attempt made it since our look, or it stood there already
                # (a name KRP never used is not looked up first): ours only if tagged so.
                if error_code(exc) != "ResourceInUseException":
                    raise
                table = self._table(dynamodb, ctx.physical_name)
                if table is None:
                    raise
                ctx.claim(self._tags(dynamodb, table["TableArn"]), "DynamoDB table")
        return self.update(ctx, spec)

    def describe(self, ctx: ProvisionContext) -> Observed | None:
        dynamodb, name = ctx.client("dynamodb"), ctx.physical_name
        table = self._table(dynamodb, name)
        if table is None:
            return None
        types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
        keys = {
            k["KeyType"]: {"name": k["AttributeName"], "type": types[k["AttributeName"]]}
            for k in table["KeySchema"]
        }
        billing_mode, read_capacity, write_capacity = self._billing(table)
        backups = dynamodb.describe_continuous_backups(TableName=name)[
            "ContinuousBackupsDescription"
        ]
        pitr = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
        return Observed(
            physical_id=name,
            arn=table["TableArn"],
            tags=self._tags(dynamodb, table["TableArn"]),
            settings={
                "partition_key": keys["HASH"],
                "sort_key": keys.get("RANGE"),
                "billing_mode": billing_mode,
                "read_capacity": read_capacity,
                "write_capacity": write_capacity,
                "point_in_time_recovery": pitr == "ENABLED",
                "deletion_protection": bool(table.get("DeletionProtectionEnabled", False)),
            },
            extra_outputs={"table_name": name},
            unexpressed=_unexpressed(table),
        )

    def update(self, ctx: ProvisionContext, spec: DynamodbTableSpec) -> Observed:
        dynamodb, name = ctx.client("dynamodb"), ctx.physical_name
        # A table that is CREATING or UPDATING refuses every change (ResourceInUseException).
        table = self._wait_until_active(dynamodb, name)
        # AWS refuses an UpdateTable that changes nothing, so ask only for a real change.
        if self._billing(table) != (spec.billing_mode, spec.read_capacity, spec.write_capacity):
            dynamodb.update_table(TableName=name, **self._billing_arguments(spec))
            table = self._wait_until_active(dynamodb, name)
        if bool(table.get("DeletionProtectionEnabled", False)) != spec.deletion_protection:
            dynamodb.update_table(
                TableName=name, DeletionProtectionEnabled=spec.deletion_protection
            )
        self._set_point_in_time_recovery(dynamodb, name, spec.point_in_time_recovery)
        arn = table["TableArn"]
        self.make_tags_exactly(
            self._tags(dynamodb, arn), ctx.tags,
            tag=lambda changed: dynamodb.tag_resource(ResourceArn=arn, Tags=tag_list(changed)),
            untag=lambda keys: dynamodb.untag_resource(ResourceArn=arn, TagKeys=keys),
            tag_first=True,
        )
        return self.described(ctx)

    def delete(self, ctx: ProvisionContext) -> None:
        dynamodb, name = ctx.client("dynamodb"), ctx.physical_name
        table = self._table(dynamodb, name)
        if table is None:
            return
        ctx.claim(self._tags(dynamodb, table["TableArn"]), "DynamoDB table")
        if table.get("DeletionProtectionEnabled"):
            raise PermanentCloudError(
                f"DynamoDB table {name} has deletion protection on; update the resource with "
                "deletion_protection false first, then delete it",
                "DeletionProtection",
            )
        if table.get("TableStatus") == "DELETING":
            return  # an earlier attempt's delete is under way
        self.ignore_absent(dynamodb.delete_table, TableName=name)

    def _wait_until_active(self, dynamodb: Any, name: str) -> dict[str, Any]:
        """Poll until the table is ACTIVE; TransientCloudError if it is not by the deadline."""
        for attempt in range(self.active_wait_attempts):
            if attempt:
                time.sleep(self.active_wait_delay)
            # Absent counts as not ready yet: a new table may not be visible at once.
            table = self._table(dynamodb, name)
            if table is not None and table["TableStatus"] == "ACTIVE":
                return table
        raise TransientCloudError(
            f"DynamoDB table {name} is not ACTIVE after "
            f"{self.active_wait_attempts * self.active_wait_delay:g} s; retry later",
            "TableNotActive",
        )

    @classmethod
    def _table(cls, dynamodb: Any, name: str) -> dict[str, Any] | None:
        answer = cls.absent_as_none(dynamodb.describe_table, TableName=name)
        return answer["Table"] if answer is not None else None

    @staticmethod
    def _billing(table: dict[str, Any]) -> tuple[str, int | None, int | None]:
        """(billing mode, read capacity, write capacity) as the spec states them."""
        # Tables created PROVISIONED before on-demand existed carry no BillingModeSummary.
        mode = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
        if mode != "PROVISIONED":
            # The old capacity stays in ProvisionedThroughput after a switch; it means nothing.
            return mode, None, None
        throughput = table.get("ProvisionedThroughput", {})
        return mode, throughput.get("ReadCapacityUnits"), throughput.get("WriteCapacityUnits")

    @staticmethod
    def _billing_arguments(spec: DynamodbTableSpec) -> dict[str, Any]:
        if spec.billing_mode == "PAY_PER_REQUEST":
            return {"BillingMode": "PAY_PER_REQUEST"}
        return {
            "BillingMode": "PROVISIONED",
            "ProvisionedThroughput": {
                "ReadCapacityUnits": spec.read_capacity,
                "WriteCapacityUnits": spec.write_capacity,
            },
        }

    @staticmethod
    def _set_point_in_time_recovery(dynamodb: Any, name: str, enabled: bool) -> None:
        backups = dynamodb.describe_continuous_backups(TableName=name)[
            "ContinuousBackupsDescription"
        ]
        status = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
        if (status == "ENABLED") == enabled:
            return
        try:
            dynamodb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled},
            )
        except ClientError as exc:
            # A table only minutes old may still be switching its backups on.
            if error_code(exc) == "ContinuousBackupsUnavailableException":
                raise TransientCloudError(
                    f"DynamoDB table {name}: continuous backups are not ready yet; retry later",
                    "ContinuousBackupsUnavailableException",
                ) from exc
            raise

    def list_all(self, clients: Any, env: EnvironmentSettings) -> dict[str, dict[str, str]]:
        dynamodb = clients.client(env.name, "dynamodb")
        return {
            name: self._tags(dynamodb, self.arn_of(env, name))
            for page in dynamodb.get_paginator("list_tables").paginate()
            for name in page.get("TableNames", [])
        }

    @staticmethod
    def _tags(dynamodb: Any, arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        kwargs: dict[str, Any] = {"ResourceArn": arn}
        while True:
            page = dynamodb.list_tags_of_resource(**kwargs)
            tags.update(tag_dict(page.get("Tags")))
            if not page.get("NextToken"):
                return tags
            kwargs["NextToken"] = page["NextToken"]


def _unexpressed(table: dict[str, Any]) -> dict[str, str]:
    """Secondary indexes: a spec has none, and a change of billing mode must then set
    each global index's capacity too, which KRP's update does not."""
    indexes = sorted(
        f"{index['IndexName']} ({kind})"
        for key, kind in (("GlobalSecondaryIndexes", "global"),
                          ("LocalSecondaryIndexes", "local"))
        for index in table.get(key) or ()
    )
    if not indexes:
        return {}
    return {"indexes": f"the table has secondary indexes {', '.join(indexes)}; a spec "
                       "states none, so KRP would manage the table as if they were not there"}
