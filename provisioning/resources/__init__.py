"""The resource type registry: type name -> its spec schema and provisioner.

Adding a type is one module in this package and one line here.
"""

from provisioning.errors import InvalidRequest
from provisioning.resources.base import ResourceType
from provisioning.resources.dynamodb_table import DynamodbTable
from provisioning.resources.iam_role import IamRole
from provisioning.resources.s3_bucket import S3Bucket
from provisioning.resources.sns_topic import SnsTopic
from provisioning.resources.sqs_queue import SqsQueue

REGISTRY: dict[str, ResourceType] = {
    resource_type.name: resource_type
    for resource_type in (
        S3Bucket(),
        SqsQueue(),
        SnsTopic(),
        DynamodbTable(),
        IamRole(),
    )
}


def resource_type(name: object) -> ResourceType:
    """The registered type called `name`; InvalidRequest naming the known ones otherwise."""
    if isinstance(name, str) and name in REGISTRY:
        return REGISTRY[name]
    raise InvalidRequest.about(
        "resource_type", f"{name!r} is not a known type (known: {', '.join(sorted(REGISTRY))})",
        "unknown_resource_type",
    )
