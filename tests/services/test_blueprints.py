"""Blueprints through the services: the two KRP ships instantiate into stacks that succeed
against the sandbox; bad parameters are refused naming each; a version a stack used cannot
change."""

import pytest

from provisioning.errors import InvalidRequest
from provisioning.models import BlueprintVersion, StackStatus
from provisioning.services import stack_submit
from provisioning.services.blueprints import (
    blueprint_check,
    blueprint_instantiate,
    blueprint_version,
)
from tests.fixtures.stacks import drive, stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]


def instantiate(user, blueprint, parameters, **fields):
    version = blueprint_version(name=blueprint)
    document = blueprint_instantiate(version, environment="alpha",
                                     name=fields.pop("name", stack_name(blueprint[:8])),
                                     parameters=parameters)
    return stack_submit(user=user, document=document, blueprint=version,
                        parameters=parameters)[0]


def test_queue_with_dlq_makes_a_queue_its_dlq_and_a_role_that_reads_both(requester, cloud):
    stack = drive(instantiate(requester, "queue-with-dlq", {"max_receive_count": 3}))

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    queue = stack.members.get(key="queue").request
    assert queue.spec["dead_letter_queue"] == {"max_receive_count": 3}
    assert queue.spec["visibility_timeout_seconds"] == 30  # the parameter's default
    reader = stack.members.get(key="reader").request
    assert reader.spec["inline_policy"]["Statement"][0]["Resource"] == [
        queue.outputs["arn"], queue.outputs["dlq_arn"]]
    assert stack.blueprint.blueprint.name == "queue-with-dlq"


def test_table_with_events_subscribes_the_queue_to_the_topic(requester, cloud):
    stack = drive(instantiate(requester, "table-with-events", {"partition_key": "order_id"}))

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    table = stack.members.get(key="table").request
    assert table.spec["partition_key"] == {"name": "order_id", "type": "S"}
    topic = stack.members.get(key="events").request.outputs["arn"]
    consumer = stack.members.get(key="consumer").request.outputs["arn"]
    subscriptions = cloud.client("alpha", "sns").list_subscriptions_by_topic(
        TopicArn=topic)["Subscriptions"]
    assert [s["Endpoint"] for s in subscriptions] == [consumer]


def test_bad_parameters_are_refused_naming_each():
    version = blueprint_version(name="queue-with-dlq")

    with pytest.raises(InvalidRequest) as refused:
        blueprint_instantiate(version, environment="alpha", name="x", parameters={
            "max_receive_count": 0, "reader_service": "me.example.com", "colour": "red"})

    fields = refused.value.fields
    assert set(fields) == {"parameters.max_receive_count", "parameters.reader_service",
                           "parameters.colour"}
    assert fields["parameters.colour"] == ["is not a parameter of this blueprint"]
    assert "must be one of 'lambda.amazonaws.com'" in fields["parameters.reader_service"][0]


def test_an_unknown_blueprint_or_version_names_what_exists():
    with pytest.raises(InvalidRequest) as refused:
        blueprint_version(name="nothing")
    assert "queue-with-dlq" in refused.value.message and "table-with-events" in (
        refused.value.message)
    with pytest.raises(InvalidRequest) as refused:
        blueprint_version(name="queue-with-dlq", version=9)
    assert refused.value.fields == {
        "version": ["blueprint 'queue-with-dlq' has no version 9 (versions: 1)"]}


def test_a_version_cannot_declare_what_it_never_fills_or_fill_what_it_never_declares():
    with pytest.raises(InvalidRequest) as refused:
        blueprint_check(document={"members": {"q": {"resource_type": "sqs_queue", "spec": {
            "delay_seconds": {"param": "delay"}}}}, "environment": "alpha"},
            parameters_schema={"type": "object", "properties": {"x": {"type": "banana"}}})
    assert set(refused.value.fields) == {"document", "parameters_schema"}


def test_a_version_a_stack_used_cannot_change(requester):
    stack = instantiate(requester, "queue-with-dlq", {})
    version = BlueprintVersion.objects.get(pk=stack.blueprint_id)
    version.notes = "changed"
    with pytest.raises(ValueError, match="used by stacks"):
        version.save()
