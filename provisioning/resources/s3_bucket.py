"""s3_bucket: a private, encrypted S3 bucket in the environment's region."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar, Literal

from botocore.exceptions import ClientError
from pydantic import Field

from containers.settings import EnvironmentSettings
from provisioning.errors import InvalidRequest
from provisioning.resources.base import (
    NOT_IMPORTABLE,
    Observed,
    ProvisionContext,
    ResourceType,
    SpecModel,
    answer_or_none,
    error_code,
    tag_dict,
    tag_list,
)

LIFECYCLE_RULE_ID = "krp-expiration"


class S3BucketSpec(SpecModel):
    versioning: bool = Field(default=False, description="keep every version of every object")
    lifecycle_expiration_days: int | None = Field(
        default=None, ge=1, le=36500, description="delete objects this many days after creation"
    )
    encryption: Literal["AES256", "aws:kms"] = Field(
        default="AES256", description="default server-side encryption"
    )


class S3Bucket(ResourceType):
    name = "s3_bucket"
    title = "S3 bucket"
    spec_model = S3BucketSpec
    max_name_length = 40
    max_physical_length = 63
    service_label = "S3"
    example_name = "invoices"
    example_spec: ClassVar[dict[str, Any]] = {
        "versioning": True, "lifecycle_expiration_days": 365, "encryption": "AES256"}
    arn_service = "s3"
    arn_has_region = arn_has_account = False
    extra_outputs = {"bucket": "the bucket's name", "region": "the bucket's region"}
    # HeadBucket has no body: botocore then gives the HTTP status as the code.
    absent_codes = frozenset({"404", "NoSuchBucket", "NotFound"})
    # A conflicting operation on the bucket (say, a recreate soon after a delete).
    transient_codes = frozenset({"OperationAborted"})

    def expected_settings(self, spec: S3BucketSpec) -> dict[str, Any]:
        return {**spec.model_dump(), "public_access_blocked": True}

    def create(self, ctx: ProvisionContext, spec: S3BucketSpec) -> Observed:
        s3 = ctx.client("s3")
        # Outside us-east-1 CreateBucket refuses a name that exists (BucketAlreadyOwnedByYou),
        # so a name KRP never used needs no look first; us-east-1 answers 200 for a bucket
        # this account already has, which would hide a stranger's bucket.
        if ctx.first_use and ctx.region != "us-east-1":
            if self._create_bucket(ctx, s3):
                return self._configure_new(ctx, spec, s3)
        elif self.owned(ctx) is None:
            self._create_bucket(ctx, s3)
        return self.update(ctx, spec)

    def _create_bucket(self, ctx: ProvisionContext, s3: Any) -> bool:
        """Create the bucket and tag it: True if this call made it, False if it was there
        (and is this request's: claimed, else Conflict)."""
        kwargs: dict[str, Any] = {"Bucket": ctx.physical_name}
        # us-east-1 refuses a LocationConstraint; every other region needs one.
        if ctx.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
        try:
            s3.create_bucket(**kwargs)
        except ClientError as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise
            # Most often our own call answered twice: its connection dropped after S3 made
            # the bucket and botocore sent it again. The name was recorded before the call,
            # so an untagged bucket here is this request's, unless this was the call's only
            # try on a name never used before: then it stood there before we asked.
            retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
            made_by_us = retried or not ctx.first_use
            replace(ctx, earlier_attempt=made_by_us).claim(
                self._tags(s3, ctx.physical_name), "S3 bucket")
            created = False
        else:
            created = True
        # Tag at once: the tag is how a later attempt knows this bucket is ours.
        s3.put_bucket_tagging(Bucket=ctx.physical_name, Tagging={"TagSet": tag_list(ctx.tags)})
        return created

    def _configure_new(self, ctx: ProvisionContext, spec: S3BucketSpec, s3: Any) -> Observed:
        """Settle the spec on a bucket this run just made (tagged, no versioning, no
        lifecycle rule): only the calls that change something, and what it now holds
        (each call succeeded, so no describe to confirm it)."""
        bucket = ctx.physical_name
        self._block_public_access(s3, bucket)
        self._encrypt(s3, bucket, spec)
        if spec.versioning:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        if spec.lifecycle_expiration_days:
            self._expire(s3, bucket, spec.lifecycle_expiration_days)
        return Observed(
            physical_id=bucket,
            arn=f"arn:aws:s3:::{bucket}",
            tags=dict(ctx.tags),
            settings=self.expected_settings(spec),
            extra_outputs={"bucket": bucket, "region": ctx.region},
        )

    def describe(self, ctx: ProvisionContext) -> Observed | None:
        s3, bucket = ctx.client("s3"), ctx.physical_name
        if self.absent_as_none(s3.head_bucket, Bucket=bucket) is None:
            return None
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
        rules = self._lifecycle_rules(s3, bucket)
        encryption = self._encryption(s3, bucket)
        return Observed(
            physical_id=bucket,
            arn=f"arn:aws:s3:::{bucket}",
            tags=self._tags(s3, bucket),
            settings={
                "versioning": versioning,
                "lifecycle_expiration_days": _expiration_days(rules),
                "encryption": encryption.get("SSEAlgorithm"),
                "public_access_blocked": self._public_access_blocked(s3, bucket),
            },
            extra_outputs={"bucket": bucket, "region": location},
            unexpressed=_unexpressed(rules, encryption),
        )

    def spec_document(self, settings: dict[str, Any]) -> dict[str, Any]:
        problems: dict[str, list[str]] = {}
        if settings["encryption"] not in ("AES256", "aws:kms"):
            problems["spec.encryption"] = [
                f"the bucket's default encryption is {settings['encryption'] or 'none'}; a "
                "spec has AES256 or aws:kms, which KRP would set in its place"]
        if not settings["public_access_blocked"]:
            problems["spec.public_access_blocked"] = [
                "public access to the bucket is not fully blocked; KRP blocks it on every "
                "bucket, which would cut off whoever relies on it"]
        if problems:
            raise InvalidRequest.about_each(problems, NOT_IMPORTABLE)
        document = {key: value for key, value in settings.items()
                    if key != "public_access_blocked"}
        return super().spec_document(document)

    def update(self, ctx: ProvisionContext, spec: S3BucketSpec) -> Observed:
        s3, bucket = ctx.client("s3"), ctx.physical_name
        self._block_public_access(s3, bucket)
        self._encrypt(s3, bucket, spec)
        current = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        if spec.versioning and current != "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        elif not spec.versioning and current == "Enabled":
            # A bucket that once had versioning can only suspend it.
            s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}
            )
        if spec.lifecycle_expiration_days:
            self._expire(s3, bucket, spec.lifecycle_expiration_days)
        else:
            s3.delete_bucket_lifecycle(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_list(ctx.tags)})
        return self.described(ctx)

    def delete(self, ctx: ProvisionContext) -> None:
        if self.owned(ctx) is None:
            return
        self.ignore_absent(ctx.client("s3").delete_bucket, Bucket=ctx.physical_name)

    @staticmethod
    def _block_public_access(s3: Any, bucket: str) -> None:
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )

    @staticmethod
    def _encrypt(s3: Any, bucket: str, spec: S3BucketSpec) -> None:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": spec.encryption}}]
            },
        )

    @staticmethod
    def _expire(s3: Any, bucket: str, days: int) -> None:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": LIFECYCLE_RULE_ID,
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "Expiration": {"Days": days},
                    }
                ]
            },
        )

    def list_all(self, clients: Any, env: EnvironmentSettings) -> dict[str, dict[str, str]]:
        s3, region = clients.client(env.name, "s3"), env.region
        found: dict[str, dict[str, str]] = {}
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            location = answer_or_none({"NoSuchBucket"}, s3.get_bucket_location, Bucket=name)
            if location is None or (location.get("LocationConstraint") or "us-east-1") != region:
                continue  # another region's: not this environment's to import
            found[name] = self._tags(s3, name)
        return found

    @staticmethod
    def _tags(s3: Any, bucket: str) -> dict[str, str]:
        answer = answer_or_none({"NoSuchTagSet"}, s3.get_bucket_tagging, Bucket=bucket)
        return tag_dict(answer["TagSet"]) if answer is not None else {}

    @staticmethod
    def _lifecycle_rules(s3: Any, bucket: str) -> list[dict[str, Any]]:
        answer = answer_or_none({"NoSuchLifecycleConfiguration"},
                                s3.get_bucket_lifecycle_configuration, Bucket=bucket)
        return list(answer["Rules"]) if answer is not None else []

    @staticmethod
    def _encryption(s3: Any, bucket: str) -> dict[str, Any]:
        """The bucket's default encryption (SSEAlgorithm, KMSMasterKeyID, ...); {} if none."""
        answer = answer_or_none({"ServerSideEncryptionConfigurationNotFoundError"},
                                s3.get_bucket_encryption, Bucket=bucket)
        rules = answer["ServerSideEncryptionConfiguration"]["Rules"] if answer else []
        return {**rules[0]["ApplyServerSideEncryptionByDefault"],
                "BucketKeyEnabled": rules[0].get("BucketKeyEnabled", False)} if rules else {}

    @staticmethod
    def _public_access_blocked(s3: Any, bucket: str) -> bool:
        answer = answer_or_none({"NoSuchPublicAccessBlockConfiguration"},
                                s3.get_public_access_block, Bucket=bucket)
        if answer is None:
            return False
        config = answer["PublicAccessBlockConfiguration"]
        return all(config.get(key) for key in (
            "BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"
        ))


def _is_krp_rule(rule: dict[str, Any]) -> bool:
    return rule.get("ID") == LIFECYCLE_RULE_ID and rule.get("Status") == "Enabled"


def _expiration_days(rules: list[dict[str, Any]]) -> int | None:
    for rule in rules:
        if _is_krp_rule(rule):
            return rule.get("Expiration", {}).get("Days")
    return None


def _unexpressed(rules: list[dict[str, Any]], encryption: dict[str, Any]) -> dict[str, str]:
    """What an update would undo: lifecycle rules besides KRP's own (it puts the whole
    configuration), a KMS key or a bucket key (it sets the bare algorithm)."""
    unexpressed: dict[str, str] = {}
    others = [str(rule.get("ID", "")) for rule in rules if not _is_krp_rule(rule)]
    if others:
        unexpressed["lifecycle_expiration_days"] = (
            f"lifecycle rules {', '.join(sorted(others))}: a spec states only KRP's own rule "
            f"({LIFECYCLE_RULE_ID}, expire every object after N days), and KRP would drop "
            "the others")
    reasons = []
    if encryption.get("KMSMasterKeyID"):
        reasons.append(f"encrypts with the KMS key {encryption['KMSMasterKeyID']}")
    if encryption.get("BucketKeyEnabled"):
        reasons.append("uses an S3 bucket key")
    if reasons:
        unexpressed["encryption"] = (f"the bucket {' and '.join(reasons)}; a spec states "
                                     "only the algorithm, and KRP would set that alone")
    return unexpressed
