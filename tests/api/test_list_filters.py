"""The lists' filters: a filter value the API does not know is a 400 naming the parameter
and the values it knows (never an empty list that looks like "nothing there"). Pages and
their sizes: test_pagination.py."""

from __future__ import annotations

import pytest

from tests.api.conftest import REQUESTS, RESOURCES, error_of
from tests.fixtures.requests import submit as service_submit

pytestmark = pytest.mark.django_db

TYPES = "dynamodb_table, iam_role, s3_bucket, sns_topic, sqs_queue"
UNKNOWN = [
    ("environment", "staging", "alpha, prod, theta, zeta"),
    ("resource_type", "s3", TYPES),
    ("status", "bogus", None),
]


@pytest.mark.parametrize("url", [REQUESTS, RESOURCES], ids=["requests", "resources"])
@pytest.mark.parametrize(("parameter", "value", "known"), UNKNOWN,
                         ids=[parameter for parameter, _, _ in UNKNOWN])
def test_an_unknown_filter_value_is_400_naming_the_known_values(requester_api, url,
                                                                parameter, value, known):
    response = requester_api.get(url, {parameter: value})

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert list(error["fields"]) == [parameter]
    problem = error["fields"][parameter][0]
    assert f"'{value}' is not one of the known values: " in problem
    if known:
        assert problem.endswith(known)


def test_an_unknown_action_filter_is_400_naming_the_actions(requester_api):
    error = error_of(requester_api.get(REQUESTS, {"action": "rename"}))

    assert error["fields"] == {
        "action": ["'rename' is not one of the known values: create, update, delete, import"]}


def test_every_unknown_filter_is_named_in_one_answer(requester_api):
    response = requester_api.get(REQUESTS, {"environment": "staging", "resource_type": "s3",
                                            "status": "bogus", "action": "rename"})

    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"environment", "resource_type", "status",
                                                 "action"}


def test_known_filter_values_narrow_the_list(requester, requester_api):
    service_submit(requester, "in-alpha", environment="alpha")
    service_submit(requester, "in-prod", environment="prod")

    response = requester_api.get(REQUESTS, {"environment": "prod", "resource_type": "s3_bucket"})

    assert response.status_code == 200
    assert [item["name"] for item in response.json()["results"]] == ["in-prod"]
