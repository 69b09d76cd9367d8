"""sns_topic's provisioner against the sandbox: FIFO naming, SQS subscriptions and the queue
policies they need, idempotency, ownership."""

import json

import pytest

from provisioning.errors import Conflict, InvalidRequest
from provisioning.resources.sns_topic import SnsTopic
from tests.fixtures.provisioning import make_context, unique_name

sns_topic = SnsTopic()
ACCOUNT, REGION = "111111111111", "ap-northeast-2"


def context(krp_settings, cloud, name, **kwargs):
    return make_context(krp_settings, cloud, kind=sns_topic, name=name, **kwargs)


def make_queue(cloud, *, fifo=False, policy=None):
    """An SQS queue in alpha made directly, as the sqs_queue type would; returns its ARN."""
    sqs = cloud.client("alpha", "sqs")
    attributes = {"FifoQueue": "true"} if fifo else {}
    if policy:
        attributes["Policy"] = json.dumps(policy)
    url = sqs.create_queue(
        QueueName=unique_name("q") + (".fifo" if fifo else ""),
        Attributes=attributes,
        tags={"krp:managed-by": "krp", "krp:environment": "alpha"},
    )["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def queue_statements(cloud, queue_arn):
    sqs = cloud.client("alpha", "sqs")
    url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
    answer = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
    policy = answer.get("Attributes", {}).get("Policy")
    return {s["Sid"]: s for s in json.loads(policy)["Statement"]} if policy else {}


def sqs_subscriptions(cloud, topic_arn):
    sns = cloud.client("alpha", "sns")
    subs = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    return {s["Endpoint"]: s["SubscriptionArn"] for s in subs if s["Protocol"] == "sqs"}


def topic_arns(cloud, environment):
    return [t["TopicArn"] for t in cloud.client(environment, "sns").list_topics()["Topics"]]


def test_topic_is_created_in_alpha_subscribed_to_its_queue(krp_settings, cloud):
    orders = make_queue(cloud)
    spec_doc = {"display_name": "Orders", "subscriptions": [
        {"queue": "orders", "raw_message_delivery": True}]}
    ctx = context(krp_settings, cloud, unique_name("events"), tags={"cost-centre": "42"},
                  references={("sqs_queue", "orders"): orders})
    spec = sns_topic.parse_spec(spec_doc)

    observed = sns_topic.create(ctx, spec)

    arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{ctx.physical_name}"
    assert observed.arn == observed.physical_id == arn
    assert observed.settings == sns_topic.expected_settings(spec) == {
        "fifo": False,
        "content_based_deduplication": False,
        "display_name": "Orders",
        "subscriptions": [{"queue": "orders", "raw_message_delivery": True}],
    }
    assert observed.tags["cost-centre"] == "42"
    assert observed.tags["krp:request-id"] == ctx.creating_request_id
    assert observed.tags["krp:managed-by"] == "krp"
    assert list(sqs_subscriptions(cloud, arn)) == [orders]
    statement = queue_statements(cloud, orders)[f"krp-sns-{ctx.physical_name}"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": arn}}


def test_a_published_message_reaches_the_queue_raw(krp_settings, cloud):
    orders = make_queue(cloud)
    ctx = context(krp_settings, cloud, unique_name("pub"),
                  references={("sqs_queue", "orders"): orders})
    sns_topic.create(ctx, sns_topic.parse_spec(
        {"subscriptions": [{"queue": "orders", "raw_message_delivery": True}]}))

    cloud.client("alpha", "sns").publish(TopicArn=sns_topic.describe(ctx).arn, Message="hello")

    sqs = cloud.client("alpha", "sqs")
    url = sqs.get_queue_url(QueueName=orders.rsplit(":", 1)[-1])["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]


def test_topic_lands_in_its_environments_account_only(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("iso"))
    observed = sns_topic.create(ctx, sns_topic.parse_spec({}))

    assert observed.arn in topic_arns(cloud, "alpha")
    assert not [arn for arn in topic_arns(cloud, "prod") if arn.endswith(ctx.physical_name)]


def test_repeating_create_adopts_the_topic_and_its_subscription(krp_settings, cloud):
    orders = make_queue(cloud)
    ctx = context(krp_settings, cloud, unique_name("again"),
                  references={("sqs_queue", "orders"): orders})
    spec = sns_topic.parse_spec({"subscriptions": [{"queue": "orders"}]})
    first = sns_topic.create(ctx, spec)

    second = sns_topic.create(ctx, spec)

    assert second == first
    assert topic_arns(cloud, "alpha").count(first.arn) == 1
    assert len(sqs_subscriptions(cloud, first.arn)) == 1
    assert len(queue_statements(cloud, orders)) == 1


def test_create_refuses_a_topic_that_another_request_owns(krp_settings, cloud):
    name = unique_name("taken")
    sns_topic.create(context(krp_settings, cloud, name), sns_topic.parse_spec({}))

    with pytest.raises(Conflict, match="belongs to KRP request"):
        sns_topic.create(context(krp_settings, cloud, name), sns_topic.parse_spec({}))


def test_untagged_topic_is_adopted_only_by_the_attempt_that_recorded_its_name(
    krp_settings, cloud
):
    name = unique_name("crash")
    ctx = context(krp_settings, cloud, name)
    cloud.client("alpha", "sns").create_topic(Name=ctx.physical_name)

    with pytest.raises(Conflict, match="not managed by KRP"):
        sns_topic.create(ctx, sns_topic.parse_spec({}))
    retry = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                    earlier_attempt=True)
    assert sns_topic.create(retry, sns_topic.parse_spec({})).tags["krp:request-id"] == (
        ctx.creating_request_id
    )


def test_update_syncs_settings_tags_and_subscriptions(krp_settings, cloud):
    orders, audit, billing = make_queue(cloud), make_queue(cloud), make_queue(cloud)
    refs = {("sqs_queue", "orders"): orders, ("sqs_queue", "audit"): audit,
            ("sqs_queue", "billing"): billing}
    name = unique_name("upd")
    ctx = context(krp_settings, cloud, name, tags={"owner": "shop", "tier": "1"},
                  references=refs)
    sns_topic.create(ctx, sns_topic.parse_spec({"display_name": "Old", "subscriptions": [
        {"queue": "orders"}, {"queue": "audit", "raw_message_delivery": True}]}))
    retagged = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id,
                       tags={"owner": "payments"}, references=refs)
    spec = sns_topic.parse_spec({"subscriptions": [
        {"queue": "billing"}, {"queue": "audit", "raw_message_delivery": False}]})

    observed = sns_topic.update(retagged, spec)

    assert observed.settings == sns_topic.expected_settings(spec)
    assert observed.settings["display_name"] is None
    assert [s["queue"] for s in observed.settings["subscriptions"]] == ["audit", "billing"]
    assert observed.tags["owner"] == "payments"
    assert "tier" not in observed.tags
    assert set(sqs_subscriptions(cloud, observed.arn)) == {audit, billing}
    assert queue_statements(cloud, orders) == {}  # the dropped queue no longer admits it


def test_subscribing_keeps_the_queues_other_policy_statements(krp_settings, cloud):
    other = {"Sid": "someone-else", "Effect": "Allow", "Principal": {"AWS": ACCOUNT},
             "Action": "sqs:ReceiveMessage", "Resource": "*"}
    orders = make_queue(cloud, policy={"Version": "2012-10-17", "Statement": [other]})
    ctx = context(krp_settings, cloud, unique_name("merge"),
                  references={("sqs_queue", "orders"): orders})

    sns_topic.create(ctx, sns_topic.parse_spec({"subscriptions": [{"queue": "orders"}]}))
    assert set(queue_statements(cloud, orders)) == {"someone-else", f"krp-sns-{ctx.physical_name}"}

    sns_topic.update(ctx, sns_topic.parse_spec({}))
    assert queue_statements(cloud, orders) == {"someone-else": other}


def test_fifo_topic_is_named_dot_fifo_and_subscribes_fifo_queues(krp_settings, cloud):
    jobs = make_queue(cloud, fifo=True)
    spec_doc = {"fifo": True, "content_based_deduplication": True,
                "subscriptions": [{"queue": "jobs"}]}
    ctx = context(krp_settings, cloud, unique_name("fifo"), spec=spec_doc,
                  references={("sqs_queue", "jobs"): jobs})
    spec = sns_topic.parse_spec(spec_doc)

    observed = sns_topic.create(ctx, spec)

    assert ctx.physical_name.endswith(".fifo")
    assert observed.arn.endswith(f":{ctx.physical_name}")
    assert observed.settings == sns_topic.expected_settings(spec)
    assert observed.settings["content_based_deduplication"] is True
    assert sns_topic.update(ctx, sns_topic.parse_spec(
        {"fifo": True, "subscriptions": [{"queue": "jobs"}]}
    )).settings["content_based_deduplication"] is False


@pytest.mark.parametrize(("fifo", "queue_fifo"), [(True, False), (False, True)])
def test_topic_and_queue_must_both_be_fifo_or_both_standard(krp_settings, cloud, fifo,
                                                            queue_fifo):
    queue = make_queue(cloud, fifo=queue_fifo)
    spec_doc = {"fifo": fifo, "subscriptions": [{"queue": "mixed"}]}
    ctx = context(krp_settings, cloud, unique_name("mix"), spec=spec_doc,
                  references={("sqs_queue", "mixed"): queue})

    with pytest.raises(InvalidRequest, match="spec.subscriptions: queue 'mixed' is a"):
        sns_topic.create(ctx, sns_topic.parse_spec(spec_doc))
    assert sns_topic.describe(ctx) is None  # refused before anything was made


def test_subscription_to_an_unknown_queue_is_refused(krp_settings, cloud):
    ctx = context(krp_settings, cloud, unique_name("unknown"))

    with pytest.raises(InvalidRequest, match="spec.subscriptions: queue 'ghost' is not"):
        sns_topic.create(ctx, sns_topic.parse_spec({"subscriptions": [{"queue": "ghost"}]}))
    assert sns_topic.describe(ctx) is None


def test_references_name_each_subscribed_queue():
    spec = sns_topic.parse_spec({"subscriptions": [{"queue": "orders"}, {"queue": "audit"}]})

    assert sns_topic.references(spec) == [("sqs_queue", "orders"), ("sqs_queue", "audit")]


def test_a_subscription_krp_does_not_know_shows_as_its_queue_arn(krp_settings, cloud):
    orders = make_queue(cloud)
    name = unique_name("drift")
    ctx = context(krp_settings, cloud, name, references={("sqs_queue", "orders"): orders})
    sns_topic.create(ctx, sns_topic.parse_spec({"subscriptions": [{"queue": "orders"}]}))

    unaware = context(krp_settings, cloud, name, creating_request_id=ctx.creating_request_id)

    assert sns_topic.describe(unaware).settings["subscriptions"] == [
        {"queue": orders, "raw_message_delivery": False}
    ]


def test_delete_unsubscribes_and_removes_the_topic_and_a_second_delete_succeeds(
    krp_settings, cloud
):
    orders = make_queue(cloud)
    ctx = context(krp_settings, cloud, unique_name("gone"),
                  references={("sqs_queue", "orders"): orders})
    arn = sns_topic.create(ctx, sns_topic.parse_spec({"subscriptions": [{"queue": "orders"}]})).arn

    sns_topic.delete(ctx)
    sns_topic.delete(ctx)

    assert sns_topic.describe(ctx) is None
    assert arn not in topic_arns(cloud, "alpha")
    all_subs = cloud.client("alpha", "sns").list_subscriptions()["Subscriptions"]
    assert [s for s in all_subs if s["TopicArn"] == arn] == []
    assert queue_statements(cloud, orders) == {}


def test_delete_refuses_a_topic_that_another_request_owns(krp_settings, cloud):
    name = unique_name("notmine")
    sns_topic.create(context(krp_settings, cloud, name), sns_topic.parse_spec({}))
    other = context(krp_settings, cloud, name)

    with pytest.raises(Conflict):
        sns_topic.delete(other)
    assert sns_topic.describe(other) is not None


def test_fifo_cannot_change_after_creation():
    with pytest.raises(InvalidRequest, match="spec.fifo: cannot change after creation"):
        sns_topic.check_update(sns_topic.parse_spec({}), sns_topic.parse_spec({"fifo": True}))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"fifo": "yes"}, "spec.fifo: Input should be a valid boolean"),
        ({"content_based_deduplication": True},
         "spec.content_based_deduplication: only a FIFO topic"),
        ({"display_name": "x" * 101}, "spec.display_name: String should have at most 100"),
        ({"display_name": ""}, "spec.display_name: String should have at least 1"),
        ({"subscriptions": [{"queue": f"q-{i:02d}"} for i in range(21)]},
         "spec.subscriptions: List should have at most 20 items"),
        ({"subscriptions": [{"queue": "orders"}, {"queue": "orders"}]},
         "spec.subscriptions: each queue may be subscribed once; repeated: orders"),
        ({"subscriptions": [{"queue": "Orders"}]},
         r"spec.subscriptions\[0\].queue: use lowercase letters"),
        ({"subscriptions": [{"queue": "q" * 41}]}, r"spec.subscriptions\[0\].queue: String should"),
        ({"subscriptions": [{"queue": "orders", "raw_message_delivery": "true"}]},
         r"spec.subscriptions\[0\].raw_message_delivery: Input should be a valid boolean"),
        ({"subscriptions": [{"queue": "orders", "protocol": "email"}]},
         r"spec.subscriptions\[0\].protocol: Extra inputs are not permitted"),
        ({"colour": "blue"}, "spec.colour: Extra inputs are not permitted"),
    ],
)
def test_bad_spec_is_refused_naming_the_field(spec, message):
    with pytest.raises(InvalidRequest, match=message):
        sns_topic.parse_spec(spec)


@pytest.mark.parametrize("name", ["Events", "a", "-events", "events-", "events_2", "x" * 41, 42])
def test_bad_name_is_refused(name):
    with pytest.raises(InvalidRequest, match="name: "):
        sns_topic.validate_name(name)


def test_physical_name_over_snss_limit_is_refused():
    spec = sns_topic.parse_spec({"fifo": True})

    with pytest.raises(InvalidRequest, match="name: .* SNS allows 256"):
        sns_topic.physical_name(prefix="krp", environment="alpha", name="x" * 247, spec=spec)


def test_delete_succeeds_when_a_subscribed_queue_is_already_gone(krp_settings, cloud):
    orders = make_queue(cloud)
    ctx = context(krp_settings, cloud, unique_name("orphan"),
                  references={("sqs_queue", "orders"): orders})
    sns_topic.create(ctx, sns_topic.parse_spec({"subscriptions": [{"queue": "orders"}]}))
    sqs = cloud.client("alpha", "sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=orders.rsplit(":", 1)[-1])["QueueUrl"])

    sns_topic.delete(ctx)

    assert sns_topic.describe(ctx) is None
