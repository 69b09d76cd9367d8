"""Update requests: name what changes, keep the rest; the resource keeps its AWS name."""

import os

import pytest
from dependency_injector import providers

from containers.settings import KrpSettings
from tests.fixtures.requests import submit
from tests.services.test_submit_validation import live_resource

pytestmark = pytest.mark.django_db


def test_update_naming_one_setting_keeps_the_others(requester):
    queue = live_resource(requester, resource_type="sqs_queue", name="jobs",
                          spec={"fifo": True, "delay_seconds": 5})

    request = submit(requester, queue.name, resource_type=queue.resource_type, action="update",
                     spec={"visibility_timeout_seconds": 90})

    assert request.spec["fifo"] is True
    assert request.spec["delay_seconds"] == 5
    assert request.spec["visibility_timeout_seconds"] == 90


def test_tags_only_update_keeps_the_spec(requester):
    table = live_resource(requester, resource_type="dynamodb_table", name="orders",
                          spec={"partition_key": {"name": "id", "type": "S"}})

    request = submit(requester, table.name, resource_type=table.resource_type, action="update",
                     tags={"owner": "payments"})

    assert request.spec == table.spec
    assert request.tags == {"owner": "payments"}


def test_update_keeps_the_physical_name_the_resource_was_made_with(requester, container):
    bucket = live_resource(requester, name="logs")
    renamed = KrpSettings.from_environ({**os.environ, "KRP_NAME_PREFIX": "acme"})
    container.settings.override(providers.Object(renamed))

    request = submit(requester, bucket.name, resource_type=bucket.resource_type,
                     action="update", spec={"versioning": True})

    assert request.physical_name == bucket.physical_name == "krp-alpha-logs"
