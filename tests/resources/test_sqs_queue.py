"""sqs_queue's provisioner against the sandbox: account, FIFO, dead-letter queue, idempotency."""

import json

import pytest

from provisioning.errors import Conflict, InvalidRequest
from provisioning.resources.sqs_queue import SqsQueue
from tests.fixtures.provisioning import make_context, unique_name

sqs_queue = SqsQueue()


def context(krp_settings, cloud, name, **kwargs):
    return make_context(krp_settings, cloud, kind=sqs_queue, name=name, **kwargs)


def queue_names(cloud, environment, prefix):
    urls = cloud.client(environment, "sqs").list_queues(QueueNamePrefix=prefix).get(
        "QueueUrls", []
    )
    return [url.rsplit("/", 1)[1] for url in urls]


def attributes(cloud, url):
    return cloud.client("alpha", "sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["All"]
    )["Attributes"]


def test_queue_is_created_in_the_environments_account_and_region(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("jobs"), tags={"cost-centre": "42"})
    spec = sqs_queue.parse_spec({"visibility_timeout_seconds": 120, "delay_seconds": 5})

    observed = sqs_queue.create(ctx, spec)

    assert observed.arn == f"arn:aws:sqs:ap-northeast-2:111111111111:{ctx.physical_name}"
    assert observed.physical_id.endswith(f"/111111111111/{ctx.physical_name}")
    assert observed.extra_outputs == {"queue_url": observed.physical_id}
    assert observed.settings == sqs_queue.expected_settings(spec)
    assert observed.settings["visibility_timeout_seconds"] == 120
    assert observed.settings["message_retention_seconds"] == 345600
    assert observed.tags["cost-centre"] == "42"
    assert observed.tags["krp:request-id"] == ctx.creating_request_id
    assert observed.tags["krp:managed-by"] == "krp"
    assert sqs_queue.describe(ctx) == observed


def test_queue_lands_in_its_environments_account_only(krp_settings, cloud):
    alpha = context(krp_settings, cloud, unique_name("data"))
    sqs_queue.create(alpha, sqs_queue.parse_spec({}))

    assert alpha.physical_name in queue_names(cloud, "alpha", alpha.physical_name)
    assert alpha.physical_name not in queue_names(cloud, "prod", alpha.physical_name)


def test_repeating_create_adopts_the_queue_instead_of_making_another(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("again"))
    spec = sqs_queue.parse_spec({"dead_letter_queue": {"max_receive_count": 3}})
    first = sqs_queue.create(ctx, spec)

    second = sqs_queue.create(ctx, spec)

    assert second == first
    assert sorted(queue_names(cloud, "alpha", ctx.physical_name)) == [
        ctx.physical_name, f"{ctx.physical_name}-dlq"
    ]


def test_create_refuses_a_queue_that_another_request_owns(krp_settings, cloud):
    name = unique_name("taken")
    sqs_queue.create(context(krp_settings, cloud, name), sqs_queue.parse_spec({}))

    with pytest.raises(Conflict, match="belongs to KRP request"):
        sqs_queue.create(context(krp_settings, cloud, name), sqs_queue.parse_spec({}))


def test_untagged_queue_is_adopted_only_by_the_attempt_that_recorded_its_name(
    krp_settings, cloud
):
    name = unique_name("crash")
    ctx = context(krp_settings, cloud, name)
    cloud.client("alpha", "sqs").create_queue(QueueName=ctx.physical_name)

    with pytest.raises(Conflict, match="not managed by KRP"):
        sqs_queue.create(ctx, sqs_queue.parse_spec({}))
    retry = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                    earlier_attempt=True)
    assert sqs_queue.create(retry, sqs_queue.parse_spec({})).tags["krp:request-id"] == (
        ctx.creating_request_id
    )


def test_update_changes_settings_and_replaces_the_tags(krp_settings, cloud):
    name = unique_name("upd")
    ctx = context(krp_settings, cloud, name, tags={"cost-centre": "42"})
    sqs_queue.create(ctx, sqs_queue.parse_spec({}))
    retagged = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                       tags={"owner": "payments"})
    spec = sqs_queue.parse_spec({
        "visibility_timeout_seconds": 0,
        "message_retention_seconds": 60,
        "delay_seconds": 900,
    })

    observed = sqs_queue.update(retagged, spec)

    assert observed.settings == sqs_queue.expected_settings(spec)
    assert observed.tags["owner"] == "payments"
    assert "cost-centre" not in observed.tags
    assert observed.tags["krp:request-id"] == ctx.creating_request_id


def test_delete_removes_the_queue_and_a_second_delete_succeeds(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("gone"))
    sqs_queue.create(ctx, sqs_queue.parse_spec({}))

    sqs_queue.delete(ctx)
    sqs_queue.delete(ctx)

    assert sqs_queue.describe(ctx) is None
    assert ctx.physical_name not in queue_names(cloud, "alpha", ctx.physical_name)


def test_delete_refuses_a_queue_that_another_request_owns(krp_settings, cloud):
    name = unique_name("mine")
    owner = context(krp_settings, cloud, name)
    sqs_queue.create(owner, sqs_queue.parse_spec({}))

    with pytest.raises(Conflict, match="belongs to KRP request"):
        sqs_queue.delete(context(krp_settings, cloud, name))
    assert sqs_queue.describe(owner) is not None


def test_fifo_queue_gets_the_suffix_and_content_based_deduplication(krp_settings, cloud):
    spec = {"fifo": True, "content_based_deduplication": True,
            "dead_letter_queue": {"max_receive_count": 2}}
    ctx = context(krp_settings, cloud, unique_name("orders"), spec=spec)
    parsed = sqs_queue.parse_spec(spec)

    observed = sqs_queue.create(ctx, parsed)

    assert ctx.physical_name.endswith(".fifo")
    assert observed.arn.endswith(f":{ctx.physical_name}")
    assert observed.settings == sqs_queue.expected_settings(parsed)
    dlq = ctx.physical_name.removesuffix(".fifo") + "-dlq.fifo"
    assert observed.extra_outputs["dlq_arn"].endswith(f":{dlq}")
    assert attributes(cloud, observed.extra_outputs["dlq_url"])["FifoQueue"] == "true"

    changed = sqs_queue.update(ctx, parsed.model_copy(update={"content_based_deduplication":
                                                              False}))
    assert changed.settings["content_based_deduplication"] is False


def test_dead_letter_queue_is_created_tagged_and_redriven_to(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("work"), tags={"owner": "payments"})
    spec = sqs_queue.parse_spec({"dead_letter_queue": {"max_receive_count": 5}})

    observed = sqs_queue.create(ctx, spec)

    assert observed.settings == sqs_queue.expected_settings(spec)
    dlq_url = observed.extra_outputs["dlq_url"]
    assert dlq_url.endswith(f"/111111111111/{ctx.physical_name}-dlq")
    dlq = attributes(cloud, dlq_url)
    assert observed.extra_outputs["dlq_arn"] == dlq["QueueArn"]
    assert dlq["QueueArn"] == f"arn:aws:sqs:ap-northeast-2:111111111111:{ctx.physical_name}-dlq"
    assert dlq["MessageRetentionPeriod"] == "1209600"
    redrive = json.loads(attributes(cloud, observed.physical_id)["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == 5
    dlq_tags = cloud.client("alpha", "sqs").list_queue_tags(QueueUrl=dlq_url)["Tags"]
    assert dlq_tags == observed.tags


def test_update_changes_then_removes_the_dead_letter_queue(krp_settings, cloud):
    name = unique_name("redrive")
    ctx = context(krp_settings, cloud, name)
    sqs_queue.create(ctx, sqs_queue.parse_spec({"dead_letter_queue": {"max_receive_count": 5}}))
    retagged = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                       tags={"owner": "payments"})

    raised = sqs_queue.update(
        retagged, sqs_queue.parse_spec({"dead_letter_queue": {"max_receive_count": 10}})
    )
    assert raised.settings["dead_letter_queue"] == {"max_receive_count": 10}
    dlq_tags = cloud.client("alpha", "sqs").list_queue_tags(
        QueueUrl=raised.extra_outputs["dlq_url"]
    )["Tags"]
    assert dlq_tags["owner"] == "payments"

    removed = sqs_queue.update(retagged, sqs_queue.parse_spec({}))

    assert removed.settings["dead_letter_queue"] is None
    assert "dlq_arn" not in removed.extra_outputs
    assert "RedrivePolicy" not in attributes(cloud, removed.physical_id)
    assert queue_names(cloud, "alpha", ctx.physical_name) == [ctx.physical_name]
    assert sqs_queue.update(retagged, sqs_queue.parse_spec({})) == removed


def test_delete_removes_the_dead_letter_queue_too(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("both"))
    sqs_queue.create(ctx, sqs_queue.parse_spec({"dead_letter_queue": {"max_receive_count": 1}}))

    sqs_queue.delete(ctx)

    assert queue_names(cloud, "alpha", ctx.physical_name) == []


def test_delete_finishes_a_dead_letter_queue_left_by_an_interrupted_delete(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("half"))
    observed = sqs_queue.create(
        ctx, sqs_queue.parse_spec({"dead_letter_queue": {"max_receive_count": 1}})
    )
    cloud.client("alpha", "sqs").delete_queue(QueueUrl=observed.physical_id)

    sqs_queue.delete(ctx)

    assert queue_names(cloud, "alpha", ctx.physical_name) == []


def test_another_requests_queue_named_like_the_dlq_is_never_used_or_deleted(krp_settings, cloud):
    name = unique_name("pay")
    other = context(krp_settings, cloud, f"{name}-dlq")
    sqs_queue.create(other, sqs_queue.parse_spec({}))
    ctx = context(krp_settings, cloud, name)
    sqs_queue.create(ctx, sqs_queue.parse_spec({}))

    with pytest.raises(Conflict, match=f"dead-letter queue {other.physical_name} .*belongs"):
        sqs_queue.update(ctx, sqs_queue.parse_spec({"dead_letter_queue": {"max_receive_count": 2}}))
    sqs_queue.update(ctx, sqs_queue.parse_spec({}))
    sqs_queue.delete(ctx)

    assert sqs_queue.describe(ctx) is None
    assert sqs_queue.describe(other) is not None


def test_fifo_cannot_change_after_creation():
    with pytest.raises(InvalidRequest, match="spec.fifo: cannot change after creation"):
        sqs_queue.check_update(sqs_queue.parse_spec({}), sqs_queue.parse_spec({"fifo": True}))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"fifo": "yes"}, "spec.fifo: Input should be a valid boolean"),
        ({"content_based_deduplication": True},
         "spec.content_based_deduplication: only a FIFO queue can deduplicate by content"),
        ({"visibility_timeout_seconds": 43201}, "spec.visibility_timeout_seconds: Input should"),
        ({"visibility_timeout_seconds": -1}, "spec.visibility_timeout_seconds: Input should"),
        ({"message_retention_seconds": 59}, "spec.message_retention_seconds: Input should"),
        ({"message_retention_seconds": 1209601}, "spec.message_retention_seconds: Input should"),
        ({"delay_seconds": 901}, "spec.delay_seconds: Input should"),
        ({"delay_seconds": "5"}, "spec.delay_seconds: Input should be a valid integer"),
        ({"dead_letter_queue": {"max_receive_count": 0}},
         "spec.dead_letter_queue.max_receive_count: Input should be"),
        ({"dead_letter_queue": {"max_receive_count": 1001}},
         "spec.dead_letter_queue.max_receive_count: Input should be"),
        ({"dead_letter_queue": {}}, "spec.dead_letter_queue.max_receive_count: Field required"),
        ({"dead_letter_queue": {"max_receive_count": 3, "arn": "x"}},
         "spec.dead_letter_queue.arn: Extra inputs are not permitted"),
        ({"colour": "blue"}, "spec.colour: Extra inputs are not permitted"),
    ],
)
def test_bad_spec_is_refused_naming_the_field(spec, message):
    with pytest.raises(InvalidRequest, match=message):
        sqs_queue.parse_spec(spec)


def test_content_based_deduplication_is_allowed_for_fifo():
    assert sqs_queue.parse_spec({"fifo": True, "content_based_deduplication": True})


@pytest.mark.parametrize("fifo", [False, True])
def test_name_too_long_for_sqs_with_its_dlq_is_refused(fifo):
    spec = sqs_queue.parse_spec({"fifo": fifo})
    with pytest.raises(InvalidRequest, match="name: .*SQS allows 80"):
        sqs_queue.physical_name(prefix="p" * 16, environment="e" * 20, name="n" * 40, spec=spec)


def test_longest_name_that_fits_is_accepted():
    spec = sqs_queue.parse_spec({"fifo": True})
    # 71 characters + "-dlq" + ".fifo" = 80
    physical = sqs_queue.physical_name(prefix="p" * 16, environment="e" * 14, name="n" * 39,
                                       spec=spec)
    assert len(physical) == 76
    assert physical.endswith("n.fifo")


@pytest.mark.parametrize("name", ["Jobs", "a", "-jobs", "jobs-", "jobs_2", "x" * 41, 42])
def test_bad_name_is_refused(name):
    with pytest.raises(InvalidRequest, match="name: "):
        sqs_queue.validate_name(name)
