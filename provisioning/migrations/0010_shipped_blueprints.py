"""Two blueprints KRP ships: a queue with its dead-letter queue and a role that reads
both, and a DynamoDB table with an event topic that feeds a queue."""

from django.db import migrations

READER_SERVICES = ["lambda.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com"]

BLUEPRINTS = [
    {
        "name": "queue-with-dlq",
        "title": "SQS queue with a dead-letter queue and a reader role",
        "description": (
            "A queue whose messages go to its dead-letter queue after max_receive_count "
            "receives, and an IAM role a service assumes to receive, delete and inspect "
            "messages of both queues."),
        "document": {
            "members": {
                "queue": {"resource_type": "sqs_queue", "spec": {
                    "visibility_timeout_seconds": {"param": "visibility_timeout_seconds"},
                    "dead_letter_queue": {"max_receive_count": {"param": "max_receive_count"}},
                }},
                "reader": {"resource_type": "iam_role", "spec": {
                    "trusted_service": {"param": "reader_service"},
                    "description": "reads the queue and its dead-letter queue",
                    "inline_policy": {"Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow",
                        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage",
                                   "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
                        "Resource": [{"ref": "queue.arn"}, {"ref": "queue.dlq_arn"}],
                    }]},
                }},
            },
        },
        "parameters_schema": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "visibility_timeout_seconds": {
                    "type": "integer", "minimum": 0, "maximum": 43200, "default": 30,
                    "description": "how long a received message stays hidden"},
                "max_receive_count": {
                    "type": "integer", "minimum": 1, "maximum": 1000, "default": 5,
                    "description": "receives of one message before it goes to the DLQ"},
                "reader_service": {
                    "type": "string", "enum": READER_SERVICES,
                    "default": "lambda.amazonaws.com",
                    "description": "the service that assumes the reader role"},
            },
        },
    },
    {
        "name": "table-with-events",
        "title": "DynamoDB table with an event topic feeding a queue",
        "description": (
            "A DynamoDB table, an SNS topic for its change events and an SQS queue "
            "subscribed to the topic, for a consumer to work through."),
        "document": {
            "members": {
                "table": {"resource_type": "dynamodb_table", "spec": {
                    "partition_key": {"name": {"param": "partition_key"}, "type": "S"}}},
                "consumer": {"resource_type": "sqs_queue", "spec": {}},
                "events": {"resource_type": "sns_topic", "spec": {"subscriptions": [{
                    "queue": {"ref": "consumer.name"},
                    "raw_message_delivery": {"param": "raw_message_delivery"},
                }]}},
            },
        },
        "parameters_schema": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "partition_key": {
                    "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,255}$", "default": "id",
                    "description": "the table's partition key (a string attribute): 1 to "
                                   "255 letters, digits, _, . or -"},
                "raw_message_delivery": {
                    "type": "boolean", "default": False,
                    "description": "deliver bare messages to the queue, without SNS's "
                                   "JSON envelope"},
            },
        },
    },
]


def ship(apps, schema_editor):
    Blueprint = apps.get_model("provisioning", "Blueprint")
    BlueprintVersion = apps.get_model("provisioning", "BlueprintVersion")
    for shipped in BLUEPRINTS:
        blueprint, _ = Blueprint.objects.get_or_create(
            name=shipped["name"],
            defaults={"title": shipped["title"], "description": shipped["description"]})
        BlueprintVersion.objects.get_or_create(
            blueprint=blueprint, version=1,
            defaults={"document": shipped["document"],
                      "parameters_schema": shipped["parameters_schema"],
                      "notes": "shipped with KRP"})


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0009_stacks_and_blueprints")]
    operations = [migrations.RunPython(ship, migrations.RunPython.noop)]
