"""sns_topic: an SNS topic (standard or FIFO) delivering to KRP-managed SQS queues.

Each subscription names an sqs_queue of the same environment by its KRP name; the caller
looks up its ARN (see `references`). Subscribing also grants the topic sqs:SendMessage on
the queue through one statement of the queue's policy, merged with whatever else is there.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from pydantic import Field, ValidationInfo, field_validator

from containers.settings import EnvironmentSettings
from provisioning.errors import InvalidRequest
from provisioning.resources.base import (
    NAME_PATTERN,
    NOT_IMPORTABLE,
    Observed,
    ProvisionContext,
    ResourceType,
    SpecModel,
    error_code,
    tag_dict,
    tag_list,
)
from provisioning.resources.sqs_queue import SqsQueue

QUEUE = SqsQueue.name
TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class SnsSubscriptionSpec(SpecModel):
    queue: str = Field(
        min_length=3, max_length=40, pattern=NAME_PATTERN.pattern,
        description="KRP name of an sqs_queue in the same environment",
    )
    raw_message_delivery: bool = Field(
        default=False, description="deliver the bare message, without SNS's JSON envelope"
    )


class SnsTopicSpec(SpecModel):
    immutable_fields = frozenset({"fifo"})

    fifo: bool = Field(default=False, description="a FIFO topic (its name ends in .fifo)")
    content_based_deduplication: bool = Field(
        default=False, description="FIFO only: deduplicate by a hash of the message body"
    )
    display_name: str | None = Field(
        default=None, min_length=1, max_length=100, description="sender name shown in SMS/email"
    )
    subscriptions: list[SnsSubscriptionSpec] = Field(
        default_factory=list, max_length=20, description="SQS queues the topic delivers to"
    )

    @field_validator("content_based_deduplication")
    @classmethod
    def _only_with_fifo(cls, value: bool, info: ValidationInfo) -> bool:
        # `fifo` is validated first; if it was itself invalid its own error says so.
        if value and info.data.get("fifo") is False:
            raise ValueError("only a FIFO topic can deduplicate by content; set fifo: true")
        return value

    @field_validator("subscriptions")
    @classmethod
    def _unique_queues(cls, value: list[SnsSubscriptionSpec]) -> list[SnsSubscriptionSpec]:
        queues = [sub.queue for sub in value]
        repeated = sorted({queue for queue in queues if queues.count(queue) > 1})
        if repeated:
            raise ValueError(f"each queue may be subscribed once; repeated: {', '.join(repeated)}")
        return value


class SnsTopic(ResourceType):
    name = "sns_topic"
    title = "SNS topic"
    spec_model = SnsTopicSpec
    max_physical_length = 256
    service_label = "SNS"
    example_name = "order-updates"
    example_spec: ClassVar[dict[str, Any]] = {
        "display_name": "Orders",
        "subscriptions": [{"queue": "order-events", "raw_message_delivery": True}]}
    example_note = ("The sqs_queue order-events must already exist in the same environment "
                    "(see the SQS queue example).")
    arn_service = "sns"
    physical_suffix = ".fifo"
    extra_outputs = {"topic_name": "the topic's name", "region": "the topic's region"}
    absent_codes = frozenset({"NotFound", "ResourceNotFound"})
    refers_to_types = frozenset({QUEUE})

    def physical_name(self, *, prefix: str, environment: str, name: str, spec: Any) -> str:
        physical = f"{prefix}-{environment}-{name}"
        if not TOPIC_NAME.match(physical):
            raise InvalidRequest.about(
                "name", f"{physical!r} is not a valid SNS topic name: use letters, digits, "
                "dashes and underscores",
                "invalid_name",
            )
        if spec.fifo:
            physical += ".fifo"  # SNS requires the suffix on a FIFO topic's name
        return self.check_length(name, physical)

    def references(self, spec: SnsTopicSpec) -> list[tuple[str, str]]:
        return [(QUEUE, sub.queue) for sub in spec.subscriptions]

    def expected_settings(self, spec: SnsTopicSpec) -> dict[str, Any]:
        settings = spec.model_dump()
        settings["subscriptions"] = sorted(settings["subscriptions"], key=lambda s: s["queue"])
        return settings

    def create(self, ctx: ProvisionContext, spec: SnsTopicSpec) -> Observed:
        # Refuse a bad subscription before making anything, so it leaves no topic behind.
        self._queue_arns(ctx, spec)
        if self.owned(ctx) is None:
            attributes = {"DisplayName": spec.display_name or ""}
            if spec.fifo:
                # Sent only for FIFO: a standard topic refuses ContentBasedDeduplication, and
                # moto reads any FifoTopic value, even "false", as FIFO.
                attributes["FifoTopic"] = "true"
                attributes["ContentBasedDeduplication"] = _flag(spec.content_based_deduplication)
            # Tags in the same call: a crash right after still leaves a topic marked as ours.
            ctx.client("sns").create_topic(
                Name=ctx.physical_name, Attributes=attributes, Tags=tag_list(ctx.tags)
            )
        return self.update(ctx, spec)

    def describe(self, ctx: ProvisionContext) -> Observed | None:
        sns, topic_arn = ctx.client("sns"), self._arn(ctx)
        answer = self.absent_as_none(sns.get_topic_attributes, TopicArn=topic_arn)
        if answer is None:
            return None
        attributes = answer["Attributes"]
        names = {arn: name for (kind, name), arn in ctx.references.items() if kind == QUEUE}
        subscriptions = [
            {
                # A queue KRP does not know by name shows as its ARN, so the drift is visible.
                "queue": names.get(sub["Endpoint"], sub["Endpoint"]),
                "raw_message_delivery": self._raw_delivery(sns, sub["SubscriptionArn"]),
            }
            for sub in self._subscriptions(sns, topic_arn)
            if sub["Protocol"] == "sqs"
        ]
        fifo = _is_true(attributes.get("FifoTopic"))
        return Observed(
            physical_id=topic_arn,
            arn=topic_arn,
            tags=tag_dict(sns.list_tags_for_resource(ResourceArn=topic_arn)["Tags"]),
            settings={
                "fifo": fifo,
                "content_based_deduplication": fifo
                and _is_true(attributes.get("ContentBasedDeduplication")),
                "display_name": attributes.get("DisplayName") or None,
                "subscriptions": sorted(subscriptions, key=lambda s: s["queue"]),
            },
            extra_outputs={"topic_name": ctx.physical_name, "region": ctx.region},
        )

    def spec_document(self, settings: dict[str, Any]) -> dict[str, Any]:
        # describe() shows a queue by its ARN when ctx.references does not name it.
        foreign = [sub["queue"] for sub in settings["subscriptions"] if ":" in sub["queue"]]
        if foreign:
            raise InvalidRequest.about(
                "spec.subscriptions", f"the topic delivers to {', '.join(foreign)}, which "
                "KRP does not manage in this environment; a spec names only KRP's queues, and "
                "KRP would unsubscribe the others (import the queues first)", NOT_IMPORTABLE)
        return super().spec_document(settings)

    def list_all(self, clients: Any, env: EnvironmentSettings) -> dict[str, dict[str, str]]:
        sns = clients.client(env.name, "sns")
        return {
            topic["TopicArn"].rsplit(":", 1)[-1]: tag_dict(sns.list_tags_for_resource(
                ResourceArn=topic["TopicArn"])["Tags"])
            for page in sns.get_paginator("list_topics").paginate()
            for topic in page.get("Topics", [])
        }

    def update(self, ctx: ProvisionContext, spec: SnsTopicSpec) -> Observed:
        queue_arns = self._queue_arns(ctx, spec)
        sns, topic_arn = ctx.client("sns"), self._arn(ctx)
        sns.set_topic_attributes(
            TopicArn=topic_arn, AttributeName="DisplayName", AttributeValue=spec.display_name or ""
        )
        if spec.fifo:
            sns.set_topic_attributes(
                TopicArn=topic_arn,
                AttributeName="ContentBasedDeduplication",
                AttributeValue=_flag(spec.content_based_deduplication),
            )
        self.make_tags_exactly(
            tag_dict(sns.list_tags_for_resource(ResourceArn=topic_arn)["Tags"]), ctx.tags,
            tag=lambda tags: sns.tag_resource(ResourceArn=topic_arn, Tags=tag_list(tags)),
            untag=lambda keys: sns.untag_resource(ResourceArn=topic_arn, TagKeys=keys),
            always_tag=True,
        )

        current = {
            sub["Endpoint"]: sub["SubscriptionArn"]
            for sub in self._subscriptions(sns, topic_arn)
            if sub["Protocol"] == "sqs"
        }
        for sub in spec.subscriptions:
            queue_arn = queue_arns[sub.queue]
            # Grant before subscribing, so the first message is not refused by the queue.
            self._grant(ctx, queue_arn, topic_arn)
            if queue_arn not in current:
                sns.subscribe(
                    TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                    Attributes={"RawMessageDelivery": _flag(sub.raw_message_delivery)},
                    ReturnSubscriptionArn=True,
                )
            elif self._raw_delivery(sns, current[queue_arn]) != sub.raw_message_delivery:
                sns.set_subscription_attributes(
                    SubscriptionArn=current[queue_arn], AttributeName="RawMessageDelivery",
                    AttributeValue=_flag(sub.raw_message_delivery),
                )
        for queue_arn, subscription_arn in current.items():
            if queue_arn not in queue_arns.values():
                self._unsubscribe(ctx, subscription_arn, queue_arn)
        return self.described(ctx)

    def delete(self, ctx: ProvisionContext) -> None:
        if self.owned(ctx) is None:
            return
        sns, topic_arn = ctx.client("sns"), self._arn(ctx)
        for sub in self._subscriptions(sns, topic_arn):
            queue_arn = sub["Endpoint"] if sub["Protocol"] == "sqs" else None
            self._unsubscribe(ctx, sub["SubscriptionArn"], queue_arn)
        self.ignore_absent(sns.delete_topic, TopicArn=topic_arn)

    def _arn(self, ctx: ProvisionContext) -> str:
        return f"arn:aws:sns:{ctx.region}:{ctx.account_id}:{ctx.physical_name}"

    def _queue_arns(self, ctx: ProvisionContext, spec: SnsTopicSpec) -> dict[str, str]:
        """Each subscribed queue's ARN, refusing unknown queues and FIFO/standard mixes."""
        arns: dict[str, str] = {}
        for sub in spec.subscriptions:
            arn = ctx.references.get((QUEUE, sub.queue))
            if arn is None:
                raise InvalidRequest.about(
                    "spec.subscriptions", f"queue {sub.queue!r} is not a KRP sqs_queue in "
                    f"environment {ctx.environment.name}",
                    "unknown_reference",
                )
            if arn.endswith(".fifo") != spec.fifo:
                kind, other = ("a FIFO", "standard") if spec.fifo else ("a standard", "FIFO")
                raise InvalidRequest.about(
                    "spec.subscriptions", f"queue {sub.queue!r} is a {other} queue; "
                    f"{kind} topic can deliver only to {kind.split()[1]} queues",
                    "invalid_spec",
                )
            arns[sub.queue] = arn
        return arns

    def _unsubscribe(self, ctx: ProvisionContext, subscription_arn: str, queue_arn: str | None,
                     ) -> None:
        # A subscription still awaiting confirmation has no ARN to unsubscribe by.
        if subscription_arn.startswith("arn:"):
            self.ignore_absent(ctx.client("sns").unsubscribe, SubscriptionArn=subscription_arn)
        # Only queues of this environment's account; a foreign endpoint is not ours to edit.
        if queue_arn and queue_arn.split(":")[3:5] == [ctx.region, ctx.account_id]:
            self._edit_queue_policy(ctx, queue_arn, None)

    def _grant(self, ctx: ProvisionContext, queue_arn: str, topic_arn: str) -> None:
        self._edit_queue_policy(ctx, queue_arn, {
            "Sid": self._sid(ctx),
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        })

    def _edit_queue_policy(
        self, ctx: ProvisionContext, queue_arn: str, statement: dict[str, Any] | None
    ) -> None:
        """Put (or, with None, remove) this topic's statement, keeping every other one."""
        sqs, sid = ctx.client("sqs"), self._sid(ctx)
        try:
            url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
            raw = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get(
                "Attributes", {}
            ).get("Policy")
        except ClientError as exc:
            if statement is None and error_code(exc) in SqsQueue.absent_codes:
                return  # the queue is gone, and its policy with it
            raise
        policy = json.loads(raw) if raw else {"Version": "2012-10-17"}
        before = policy.get("Statement", [])
        before = [before] if isinstance(before, dict) else before
        after = [s for s in before if s.get("Sid") != sid] + ([statement] if statement else [])
        if after == before:
            return
        policy["Statement"] = after
        # An empty Policy attribute is how SQS removes a queue's policy.
        document = json.dumps(policy) if after else ""
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": document})

    @staticmethod
    def _sid(ctx: ProvisionContext) -> str:
        return f"krp-sns-{ctx.physical_name}"

    @staticmethod
    def _subscriptions(sns: Any, topic_arn: str) -> list[dict[str, Any]]:
        paginator = sns.get_paginator("list_subscriptions_by_topic")
        return [
            sub
            for page in paginator.paginate(TopicArn=topic_arn)
            for sub in page.get("Subscriptions", [])
        ]

    @staticmethod
    def _raw_delivery(sns: Any, subscription_arn: str) -> bool:
        if not subscription_arn.startswith("arn:"):
            return False  # pending confirmation: no attributes to read yet
        attributes = sns.get_subscription_attributes(SubscriptionArn=subscription_arn)
        return _is_true(attributes["Attributes"].get("RawMessageDelivery"))


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _is_true(value: Any) -> bool:
    return str(value).lower() == "true"
