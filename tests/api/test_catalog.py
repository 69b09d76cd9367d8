"""What a caller can learn before asking: resource types with the schema of their spec, the
environments (never a credential), health and readiness, and the API's own description."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

RESOURCE_TYPES = "/api/v1/resource-types/"
ENVIRONMENTS = "/api/v1/environments/"


def test_resource_types_lists_all_five(requester_api):
    response = requester_api.get(RESOURCE_TYPES)

    assert response.status_code == 200
    assert sorted(kind["name"] for kind in response.json()) == [
        "dynamodb_table", "iam_role", "s3_bucket", "sns_topic", "sqs_queue",
    ]


@pytest.mark.parametrize(
    ("name", "a_field"),
    [
        ("s3_bucket", "versioning"),
        ("sqs_queue", "fifo"),
        ("sns_topic", "subscriptions"),
        ("dynamodb_table", "partition_key"),
        ("iam_role", "trusted_service"),
    ],
)
def test_each_resource_type_has_the_json_schema_of_its_spec(requester_api, name, a_field):
    kinds = {kind["name"]: kind for kind in requester_api.get(RESOURCE_TYPES).json()}

    kind = kinds[name]
    assert kind["title"] and kind["max_name_length"] >= 3
    assert kind["spec_schema"]["type"] == "object"
    assert a_field in kind["spec_schema"]["properties"]


def test_environments_show_where_each_lands_and_whether_it_needs_approval(requester_api):
    response = requester_api.get(ENVIRONMENTS)

    assert response.status_code == 200
    assert response.json() == [
        {"name": "alpha", "account_id": "111111111111", "region": "ap-northeast-2",
         "requires_approval": False, "auto_approve_within_quota": False, "max_ttl": None,
         "requires_ttl": False},
        {"name": "prod", "account_id": "222222222222", "region": "ap-northeast-2",
         "requires_approval": True, "auto_approve_within_quota": False, "max_ttl": None,
         "requires_ttl": False},
        {"name": "theta", "account_id": "777777777777", "region": "ap-northeast-2",
         "requires_approval": True, "auto_approve_within_quota": True, "max_ttl": None,
         "requires_ttl": False},
        {"name": "zeta", "account_id": "666666666666", "region": "ap-northeast-2",
         "requires_approval": False, "auto_approve_within_quota": False, "max_ttl": "7d",
         "requires_ttl": True},
    ]


def test_environments_never_show_a_role_endpoint_or_credential(requester_api):
    response = requester_api.get(ENVIRONMENTS)

    for environment in response.json():
        assert set(environment) == {"name", "account_id", "region", "requires_approval",
                                    "auto_approve_within_quota", "max_ttl", "requires_ttl"}
    assert "role" not in response.content.decode()
    assert "secret" not in response.content.decode().lower()


def test_healthz_answers_without_credentials():
    response = APIClient().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_says_the_database_broker_and_sweep_are_ok():
    response = APIClient().get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert (body["checks"]["database"], body["checks"]["broker"]) == ("ok", "ok")
    assert (body["checks"]["sweep"]["ok"], body["checks"]["sweep"]["status"]) == (True, "ok")


def test_the_openapi_schema_is_served_to_anyone():
    response = APIClient().get("/api/schema/")

    assert response.status_code == 200
    assert b"/api/v1/requests/" in response.content


def test_the_docs_page_is_served_with_no_external_asset():
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert assets, "the docs page should load Swagger UI's assets"
    assert all(url.startswith("/static/") for url in assets), assets
    assert "cdn" not in html.lower()
    assert not re.search(r"https?://", html)


@pytest.mark.django_db
def test_a_token_made_with_drf_create_token_authenticates(requester):
    from io import StringIO

    from django.core.management import call_command
    from rest_framework.test import APIClient

    out = StringIO()
    call_command("drf_create_token", requester.username, stdout=out)
    key = out.getvalue().split()[2]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert client.get("/api/v1/requests/").status_code == 200
