"""The environment and resource type filters of the admin's lists offer the values KRP
knows (the settings' environments, the registry's types), not those found by reading every
row on every view of the list, and narrow the list as Django's own filters did (same query
parameters)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

REQUESTS = reverse("admin:provisioning_resourcerequest_changelist")
RESOURCES = reverse("admin:provisioning_resource_changelist")
FINDINGS = reverse("admin:provisioning_finding_changelist")


def test_the_filters_offer_every_known_environment_and_type(client, root, requester):
    submit(requester, "in-alpha")
    client.force_login(root)

    page = client.get(REQUESTS).content.decode()

    # Nothing was asked of prod or of a queue, and both are offered.
    assert "?environment=prod" in page
    assert "?resource_type=sqs_queue" in page


def test_a_known_value_filter_narrows_the_list(client, root, requester):
    submit(requester, "in-alpha")
    submit(requester, "in-prod", environment="prod")
    client.force_login(root)

    page = client.get(REQUESTS, {"environment": "prod",
                                 "resource_type": "s3_bucket"}).content.decode()

    assert "alpha/in-prod" not in page and "prod/in-prod" in page
    assert "alpha/in-alpha" not in page


@pytest.mark.parametrize("url", [REQUESTS, RESOURCES, FINDINGS],
                         ids=["requests", "resources", "findings"])
def test_showing_a_list_reads_no_distinct_values_of_its_rows(client, root, requester, url):
    submit(requester, "in-alpha")
    client.force_login(root)

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200

    assert not [query["sql"] for query in captured.captured_queries
                if "SELECT DISTINCT" in query["sql"]]
