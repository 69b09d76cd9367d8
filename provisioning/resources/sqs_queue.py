"""sqs_queue: an SQS queue (standard or FIFO), optionally with a dead-letter queue KRP manages.

The dead-letter queue is a second queue named after the main one (`<name>-dlq`, or
`<base>-dlq.fifo` for FIFO), carrying the same tags; the main queue's RedrivePolicy points
at it. It exists exactly while the spec asks for it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar, NamedTuple

from botocore.exceptions import ClientError
from pydantic import Field, ValidationInfo, field_validator

from containers.settings import EnvironmentSettings
from provisioning.errors import InvalidRequest
from provisioning.resources.base import (
    REQUEST_ID,
    Observed,
    ProvisionContext,
    ResourceType,
    SpecModel,
    error_code,
)

ALREADY_EXISTS = ("QueueAlreadyExists", "QueueNameExists")
FIFO_SUFFIX = ".fifo"
DLQ_SUFFIX = "-dlq"
MAX_QUEUE_NAME = 80
# Messages moved to a standard queue's DLQ keep their original enqueue time, so the DLQ
# keeps them for the longest period SQS allows rather than expiring them early.
DLQ_RETENTION_SECONDS = 1209600


class DeadLetterQueueSpec(SpecModel):
    max_receive_count: int = Field(
        ge=1, le=1000, description="receives of one message before SQS moves it to the DLQ"
    )


class SqsQueueSpec(SpecModel):
    fifo: bool = Field(default=False, description="a FIFO queue (exactly-once, ordered)")
    content_based_deduplication: bool = Field(
        default=False, description="FIFO only: deduplicate by a hash of the message body"
    )
    visibility_timeout_seconds: int = Field(
        default=30, ge=0, le=43200, description="how long a received message stays hidden"
    )
    message_retention_seconds: int = Field(
        default=345600, ge=60, le=1209600, description="how long SQS keeps a message"
    )
    delay_seconds: int = Field(
        default=0, ge=0, le=900, description="delay before a new message can be received"
    )
    dead_letter_queue: DeadLetterQueueSpec | None = Field(
        default=None, description="create a dead-letter queue and redrive to it"
    )

    immutable_fields = frozenset({"fifo"})

    @field_validator("content_based_deduplication")
    @classmethod
    def _only_for_fifo(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("fifo", False):
            raise ValueError("only a FIFO queue can deduplicate by content; set fifo to true")
        return value


class _Queue(NamedTuple):
    url: str
    tags: dict[str, str]


def dlq_name(physical_name: str) -> str:
    """The dead-letter queue's name: a FIFO queue's must end in .fifo too."""
    if physical_name.endswith(FIFO_SUFFIX):
        return physical_name.removesuffix(FIFO_SUFFIX) + DLQ_SUFFIX + FIFO_SUFFIX
    return physical_name + DLQ_SUFFIX


class SqsQueue(ResourceType):
    name = "sqs_queue"
    title = "SQS queue"
    spec_model = SqsQueueSpec
    max_name_length = 40
    physical_name_limit = (f"its dead-letter queue's name, <prefix>-<environment>-<name>-dlq "
                           f"(and .fifo), must fit SQS's {MAX_QUEUE_NAME} characters")
    example_name = "order-events"
    example_spec: ClassVar[dict[str, Any]] = {
        "visibility_timeout_seconds": 60, "dead_letter_queue": {"max_receive_count": 5}}
    arn_service = "sqs"
    physical_suffix = FIFO_SUFFIX
    extra_outputs = {
        "queue_url": "the queue's URL",
        "dlq_arn": "its dead-letter queue's ARN (with dead_letter_queue)",
        "dlq_url": "its dead-letter queue's URL (with dead_letter_queue)",
    }
    # botocore reports the query-compatible code; the plain JSON-protocol code is the second.
    absent_codes = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
    # SQS refuses to recreate a queue of a name deleted less than 60 s ago.
    transient_codes = frozenset(
        {"AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"}
    )

    def physical_name(self, *, prefix: str, environment: str, name: str, spec: Any) -> str:
        physical = super().physical_name(prefix=prefix, environment=environment, name=name,
                                         spec=spec)
        if getattr(spec, "fifo", False):
            physical += FIFO_SUFFIX
        # Leave room for the dead-letter queue even without one: an update may add it.
        longest = dlq_name(physical)
        if len(longest) > MAX_QUEUE_NAME:
            raise InvalidRequest.about(
                "name", f"{name!r} is too long for an SQS queue: its dead-letter queue "
                f"{longest!r} would have {len(longest)} characters, SQS allows "
                f"{MAX_QUEUE_NAME}",
                "invalid_name",
            )
        return physical

    def create(self, ctx: ProvisionContext, spec: SqsQueueSpec) -> Observed:
        sqs = ctx.client("sqs")
        if ctx.first_use:
            made = self._create_new(ctx, sqs, spec)
            if made is not None:
                return made
        existing = _find(sqs, ctx.physical_name)
        if existing is not None:
            ctx.claim(existing.tags, "SQS queue")
        else:
            _create_queue(ctx, sqs, ctx.physical_name, spec.fifo, "SQS queue", {})
        return self.update(ctx, spec)

    def _create_new(self, ctx: ProvisionContext, sqs: Any,
                    spec: SqsQueueSpec) -> Observed | None:
        """Make the queue (and its DLQ) under a name KRP never used, with every attribute
        and tag in the create call and no describe after; None if a queue of either name
        stands there (the caller then takes the lookup path, which claims or refuses it).

        Unlike the other types' creates, CreateQueue does not refuse a name in use: it
        answers an existing queue's URL when the attributes match (and moto then tags it
        as asked), so a stranger's queue would pass for ours. Hence the look first.
        """
        names = [ctx.physical_name]
        if spec.dead_letter_queue is not None:
            names.append(dlq_name(ctx.physical_name))
        if any(_url(sqs, name) is not None for name in names):
            return None
        outputs: dict[str, Any] = {}
        attributes = self._attributes_of(spec)
        if spec.dead_letter_queue is not None:
            dlq_ctx = dataclasses.replace(ctx, physical_name=dlq_name(ctx.physical_name))
            outputs["dlq_url"] = _create_queue(
                dlq_ctx, sqs, dlq_ctx.physical_name, spec.fifo, "SQS dead-letter queue",
                {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})
            outputs["dlq_arn"] = self._arn(ctx, dlq_ctx.physical_name)
            attributes["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": outputs["dlq_arn"],
                "maxReceiveCount": spec.dead_letter_queue.max_receive_count,
            })
        # Made since we looked (a race, in AWS, which does not tag an existing queue):
        # _create_queue's tag check refuses what is not ours.
        url = _create_queue(ctx, sqs, ctx.physical_name, spec.fifo, "SQS queue", attributes)
        return Observed(
            physical_id=url,
            arn=self._arn(ctx, ctx.physical_name),
            tags=dict(ctx.tags),
            settings=self.expected_settings(spec),
            extra_outputs={"queue_url": url, **outputs},
        )

    @staticmethod
    def _arn(ctx: ProvisionContext, name: str) -> str:
        return f"arn:aws:sqs:{ctx.region}:{ctx.account_id}:{name}"

    @staticmethod
    def _attributes_of(spec: SqsQueueSpec) -> dict[str, str]:
        """The queue attributes the spec sets (the redrive policy aside)."""
        attributes = {
            "VisibilityTimeout": str(spec.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(spec.message_retention_seconds),
            "DelaySeconds": str(spec.delay_seconds),
        }
        if spec.fifo:  # SQS refuses the attribute on a standard queue
            attributes["ContentBasedDeduplication"] = _flag(spec.content_based_deduplication)
        return attributes

    def describe(self, ctx: ProvisionContext) -> Observed | None:
        sqs = ctx.client("sqs")
        queue = _find(sqs, ctx.physical_name)
        if queue is None:
            return None
        attributes = _attributes(sqs, queue.url)
        if attributes is None:
            return None  # deleted between the two calls
        arn = attributes["QueueArn"]
        outputs: dict[str, Any] = {"queue_url": queue.url}
        dead_letter_queue = None
        unexpressed: dict[str, str] = {}
        redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
        # Only a redrive to the DLQ KRP names counts as the spec's dead_letter_queue.
        expected_dlq_arn = f"{arn.rsplit(':', 1)[0]}:{dlq_name(ctx.physical_name)}"
        target = redrive.get("deadLetterTargetArn")
        if target is not None and target != expected_dlq_arn:
            unexpressed["dead_letter_queue"] = (
                f"the queue redrives to {target}; a spec's dead-letter queue is "
                f"{dlq_name(ctx.physical_name)}, and KRP would remove any other redrive")
        if target == expected_dlq_arn:
            dead_letter_queue = {"max_receive_count": int(redrive["maxReceiveCount"])}
            outputs["dlq_arn"] = expected_dlq_arn
            dlq = _url(sqs, dlq_name(ctx.physical_name))
            if dlq is not None:
                outputs["dlq_url"] = dlq
        return Observed(
            physical_id=queue.url,
            arn=arn,
            tags=queue.tags,
            settings={
                "fifo": attributes.get("FifoQueue") == "true",
                "content_based_deduplication": (
                    attributes.get("ContentBasedDeduplication") == "true"
                ),
                "visibility_timeout_seconds": int(attributes["VisibilityTimeout"]),
                "message_retention_seconds": int(attributes["MessageRetentionPeriod"]),
                "delay_seconds": int(attributes["DelaySeconds"]),
                "dead_letter_queue": dead_letter_queue,
            },
            extra_outputs=outputs,
            unexpressed=unexpressed,
        )

    def import_name(self, physical_name_or_arn: str, *, prefix: str, environment: str) -> str:
        """As for every type, and also a queue's URL (https://sqs.<region>.amazonaws.com/
        <account>/<name>), the form SQS most often shows a queue in."""
        given = physical_name_or_arn.strip()
        if given.startswith(("https://", "http://")):
            given = given.rstrip("/").rsplit("/", 1)[-1]
        return super().import_name(given, prefix=prefix, environment=environment)

    def list_all(self, clients: Any, env: EnvironmentSettings) -> dict[str, dict[str, str]]:
        """Every queue but those that are another listed queue's dead-letter queue (they
        are imported with it)."""
        sqs = clients.client(env.name, "sqs")
        urls = [url for page in sqs.get_paginator("list_queues").paginate(MaxResults=1000)
                for url in page.get("QueueUrls", [])]
        names = {url.rsplit("/", 1)[-1]: url for url in urls}
        dead_letters = {dlq_name(name) for name in names}
        return {name: _tags(sqs, url) for name, url in names.items()
                if name not in dead_letters}

    def delete_notes(self, ctx: ProvisionContext, current: Observed) -> list[str]:
        """The SNS subscriptions that deliver to the queue: they go with it."""
        pages = ctx.client("sns").get_paginator("list_subscriptions").paginate()
        count = sum(1 for page in pages for subscription in page.get("Subscriptions", [])
                    if subscription.get("Endpoint") == current.arn)
        if not count:
            return []
        if count == 1:
            return ["the 1 subscription that points at it"]
        return [f"the {count} subscriptions that point at it"]

    def update(self, ctx: ProvisionContext, spec: SqsQueueSpec) -> Observed:
        sqs = ctx.client("sqs")
        url = sqs.get_queue_url(QueueName=ctx.physical_name)["QueueUrl"]
        attributes = self._attributes_of(spec)
        if spec.dead_letter_queue is not None:
            # The DLQ must exist before a redrive policy may point at it.
            attributes["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": self._ensure_dlq(ctx, sqs, spec.fifo),
                "maxReceiveCount": spec.dead_letter_queue.max_receive_count,
            })
        elif "RedrivePolicy" in (_attributes(sqs, url, ["RedrivePolicy"]) or {}):
            attributes["RedrivePolicy"] = ""  # an empty policy removes it
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        if spec.dead_letter_queue is None:
            # Only now that no redrive points at it may the DLQ go.
            self._delete_dlq(ctx, sqs)
        self._sync_tags(sqs, url, ctx.tags)
        return self.described(ctx)

    def delete(self, ctx: ProvisionContext) -> None:
        sqs = ctx.client("sqs")
        queue = _find(sqs, ctx.physical_name)
        if queue is not None:
            ctx.claim(queue.tags, "SQS queue")
            _delete(sqs, queue.url)
        # Also when the main queue is already gone: an earlier attempt may have stopped
        # between the two deletes.
        self._delete_dlq(ctx, sqs)

    def _ensure_dlq(self, ctx: ProvisionContext, sqs: Any, fifo: bool) -> str:
        """Create or adopt this queue's DLQ, settle its retention and tags; its ARN."""
        dlq_ctx = dataclasses.replace(ctx, physical_name=dlq_name(ctx.physical_name))
        retention = {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
        dlq = _find(sqs, dlq_ctx.physical_name)
        if dlq is None:
            url = _create_queue(dlq_ctx, sqs, dlq_ctx.physical_name, fifo,
                                "SQS dead-letter queue", retention)
        else:
            # A queue of that name that another request made is not ours to redrive into.
            dlq_ctx.claim(dlq.tags, "SQS dead-letter queue")
            url = dlq.url
            sqs.set_queue_attributes(QueueUrl=url, Attributes=retention)
            self._sync_tags(sqs, url, ctx.tags)
        attributes = _attributes(sqs, url, ["QueueArn"])
        assert attributes is not None  # we just made or found it
        return attributes["QueueArn"]

    def _sync_tags(self, sqs: Any, url: str, tags: dict[str, str]) -> None:
        self.make_tags_exactly(
            _tags(sqs, url), tags,
            tag=lambda wanted: sqs.tag_queue(QueueUrl=url, Tags=wanted),
            untag=lambda keys: sqs.untag_queue(QueueUrl=url, TagKeys=keys),
            send_all=True,
        )

    @staticmethod
    def _delete_dlq(ctx: ProvisionContext, sqs: Any) -> None:
        dlq = _find(sqs, dlq_name(ctx.physical_name))
        # A queue of that name made by another request (its own `<name>-dlq` queue) stays.
        if dlq is not None and dlq.tags.get(REQUEST_ID) == ctx.creating_request_id:
            _delete(sqs, dlq.url)


def _create_queue(ctx: ProvisionContext, sqs: Any, name: str, fifo: bool, what: str,
                  attributes: dict[str, str]) -> str:
    """Create a queue with its tags in the same call; its URL."""
    attributes = {**attributes, **({"FifoQueue": "true"} if fifo else {})}
    try:
        url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=ctx.tags)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) not in ALREADY_EXISTS:
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    # CreateQueue answers an existing queue's URL when the attributes match, without
    # applying our tags: one made by someone else since we looked must not be adopted.
    ctx.claim(_tags(sqs, url), what)
    return url


def _url(sqs: Any, name: str) -> str | None:
    answer = SqsQueue.absent_as_none(sqs.get_queue_url, QueueName=name)
    return str(answer["QueueUrl"]) if answer is not None else None


def _find(sqs: Any, name: str) -> _Queue | None:
    url = _url(sqs, name)
    if url is None:
        return None
    # Deleted between the two calls: as absent as if the first had not found it.
    answer = SqsQueue.absent_as_none(sqs.list_queue_tags, QueueUrl=url)
    return _Queue(url, _tag_answer(answer)) if answer is not None else None


def _attributes(sqs: Any, url: str, names: list[str] | None = None) -> dict[str, str] | None:
    answer = SqsQueue.absent_as_none(sqs.get_queue_attributes, QueueUrl=url,
                                     AttributeNames=names or ["All"])
    return dict(answer.get("Attributes", {})) if answer is not None else None


def _tags(sqs: Any, url: str) -> dict[str, str]:
    return _tag_answer(sqs.list_queue_tags(QueueUrl=url))


def _tag_answer(answer: dict[str, Any]) -> dict[str, str]:
    return dict(answer.get("Tags") or {})


def _delete(sqs: Any, url: str) -> None:
    SqsQueue.ignore_absent(sqs.delete_queue, QueueUrl=url)


def _flag(value: bool) -> str:
    return "true" if value else "false"
