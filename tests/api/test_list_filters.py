"""The lists' query parameters: a filter value the API does not know is a 400 naming the
parameter and the values it knows (never an empty list that looks like "nothing there");
page_size is honoured up to its documented maximum; a page past the end is a 404 that says
how many pages there are, in the API's error shape."""

from __future__ import annotations

import pytest

from provisioning.api.pagination import MAX_PAGE_SIZE
from tests.api.conftest import REQUESTS, RESOURCES, error_of
from tests.fixtures.requests import submit as service_submit

pytestmark = pytest.mark.django_db

TYPES = "dynamodb_table, iam_role, s3_bucket, sns_topic, sqs_queue"
UNKNOWN = [
    ("environment", "staging", "alpha, prod"),
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
        "action": ["'rename' is not one of the known values: create, update, delete"]}


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


def test_page_size_is_honoured(requester, requester_api):
    for number in range(5):
        service_submit(requester, f"bucket-{number}")

    first = requester_api.get(REQUESTS, {"page_size": 2}).json()
    last = requester_api.get(REQUESTS, {"page_size": 2, "page": 3}).json()

    assert (first["count"], len(first["results"])) == (5, 2)
    assert "page_size=2" in first["next"]
    assert [item["name"] for item in last["results"]] == ["bucket-0"]


def test_the_largest_page_size_is_accepted(requester_api):
    assert requester_api.get(RESOURCES, {"page_size": MAX_PAGE_SIZE}).status_code == 200


@pytest.mark.parametrize("size", [str(MAX_PAGE_SIZE + 1), "0", "-5", "ten", "2.5"])
def test_a_page_size_out_of_range_is_400_saying_the_range(requester_api, size):
    response = requester_api.get(REQUESTS, {"page_size": size})

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_page_size"
    assert list(error["fields"]) == ["page_size"]
    assert f"from 1 to {MAX_PAGE_SIZE}" in error["message"]


@pytest.mark.parametrize("page", ["9", "0", "first"])
def test_a_page_that_does_not_exist_is_404_saying_how_many_there_are(requester,
                                                                     requester_api, page):
    for number in range(3):
        service_submit(requester, f"bucket-{number}")

    response = requester_api.get(REQUESTS, {"page": page, "page_size": 2})

    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    assert "there are 2 pages of 2" in error["message"]
    assert error["fields"] == {"page": ["must be a page number from 1 to 2"]}
