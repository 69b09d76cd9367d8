"""The lists are paged by cursor: following `next` from the first page shows every row once,
in the list's order (requests newest first, ties broken by id), whatever is added meanwhile;
`previous` walks back over the same pages; a cursor the API did not give is a 400 in the API's
error shape; page_size is honoured from 1 to its maximum; filters hold across pages; and a
page costs the same number of queries at any size and depth."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from provisioning.api.pagination import MAX_PAGE_SIZE
from provisioning.models import RequestStatus, Resource, ResourceRequest, ResourceStatus
from tests.api.conftest import REQUESTS, RESOURCES, error_of

pytestmark = pytest.mark.django_db

START = timezone.now() - timedelta(days=1)


def add_requests(user: User, count: int, *, first: int = 0, same_time: bool = False,
                 **fields) -> list[ResourceRequest]:
    """`count` requests of the user's team, each a second after the one before (all at one
    time with `same_time`), as rows already recorded."""
    rows = ResourceRequest.objects.bulk_create(
        ResourceRequest(
            environment=fields.get("environment", "alpha"), resource_type="s3_bucket",
            name=f"bucket-{number:04d}", status=fields.get("status", RequestStatus.QUEUED),
            requested_by=user, team=user.groups.get(), physical_name=f"krp-bucket-{number}",
            task_id=str(uuid.uuid4()))
        for number in range(first, first + count))
    for number, row in enumerate(rows, start=first):
        row.created_at = START if same_time else START + timedelta(seconds=number)
    ResourceRequest.objects.bulk_update(rows, ["created_at"])
    return rows


def newest_first(rows: list[ResourceRequest]) -> list[str]:
    return [str(row.pk) for row in sorted(rows, key=lambda row: (row.created_at, row.pk),
                                          reverse=True)]


def walk(client, url: str, query: dict | None = None, *, back: bool = False) -> list[dict]:
    """Every page from the first, following `next`; with `back`, then `previous` from the
    last page to the first. The pages' bodies in the order visited."""
    pages = [client.get(url, query).json()]
    while pages[-1]["next"]:
        pages.append(client.get(pages[-1]["next"]).json())
    if back:
        while pages[-1]["previous"]:
            pages.append(client.get(pages[-1]["previous"]).json())
    return pages


def ids(pages: list[dict]) -> list[str]:
    return [item["id"] for page in pages for item in page["results"]]


@pytest.mark.parametrize("same_time", [False, True], ids=["distinct times", "one time"])
def test_following_next_shows_every_request_once_newest_first(requester, requester_api,
                                                              same_time):
    rows = add_requests(requester, 30, same_time=same_time)

    pages = walk(requester_api, REQUESTS, {"page_size": 7})

    assert [len(page["results"]) for page in pages] == [7, 7, 7, 7, 2]
    assert ids(pages) == newest_first(rows)
    assert pages[0]["previous"] is None
    assert set(pages[0]) == {"next", "previous", "results"}


def test_following_previous_from_the_last_page_shows_the_same_pages(requester,
                                                                    requester_api):
    add_requests(requester, 20)

    pages = walk(requester_api, REQUESTS, {"page_size": 6}, back=True)

    forward, backward = pages[:4], pages[3:]
    assert [page["results"] for page in backward] == [page["results"]
                                                      for page in reversed(forward)]
    assert backward[-1]["previous"] is None


def test_requests_added_while_walking_do_not_move_the_rows_past_the_cursor(requester,
                                                                         requester_api):
    rows = add_requests(requester, 20)
    first = requester_api.get(REQUESTS, {"page_size": 7}).json()

    added = add_requests(requester, 5, first=100)
    rest = walk(requester_api, first["next"])

    assert ids([first, *rest]) == newest_first(rows)
    again = requester_api.get(REQUESTS, {"page_size": 7}).json()
    assert [item["id"] for item in again["results"]][:5] == newest_first(added)


def test_a_filter_holds_on_every_page(requester, requester_api):
    failed = add_requests(requester, 11, status=RequestStatus.FAILED)
    add_requests(requester, 9, first=50)
    prod = add_requests(requester, 4, first=80, environment="prod",
                        status=RequestStatus.FAILED)

    pages = walk(requester_api, REQUESTS, {"status": "failed", "environment": "alpha",
                                           "page_size": 3})

    assert ids(pages) == newest_first(failed)
    assert all("status=failed" in page["next"] for page in pages[:-1])
    assert ids(walk(requester_api, REQUESTS, {"status": "failed", "page_size": 3})) == (
        newest_first(failed + prod))


def test_the_inventory_is_paged_in_its_own_order_with_ties_broken(requester, requester_api,
                                                                  resource_of):
    for name in ("berry", "apple", "cherry"):
        resource_of(requester, name)
    resource_of(requester, "apple", resource_type="sqs_queue")
    resource_of(requester, "zebra", environment="prod")
    # A deleted resource's name is free again: two rows share (environment, type, name).
    Resource.objects.filter(name="berry").update(status=ResourceStatus.DELETED)
    resource_of(requester, "berry")

    pages = walk(requester_api, RESOURCES, {"page_size": 2})

    shown = [(item["environment"], item["resource_type"], item["name"])
             for page in pages for item in page["results"]]
    assert shown == [("alpha", "s3_bucket", "apple"), ("alpha", "s3_bucket", "berry"),
                     ("alpha", "s3_bucket", "berry"), ("alpha", "s3_bucket", "cherry"),
                     ("alpha", "sqs_queue", "apple"), ("prod", "s3_bucket", "zebra")]
    assert len(set(ids(pages))) == 6


def _cursor(document) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


TAMPERED = {
    "not base64": "!!!",
    "not json": base64.urlsafe_b64encode(b"p=2026").decode(),
    "not a time": _cursor({"p": ["yesterday", str(uuid.uuid4())]}),
    "not an id": _cursor({"p": ["2026-01-01T00:00:00+00:00", "42"]}),
    "too few keys": _cursor({"p": ["2026-01-01T00:00:00+00:00"]}),
    "a list's own cursor of another list": _cursor({"p": ["alpha", "s3_bucket", "a",
                                                          str(uuid.uuid4())]}),
    "numbers": _cursor({"p": [1, 2]}),
    "odd direction": _cursor({"p": ["2026-01-01T00:00:00+00:00", str(uuid.uuid4())],
                              "r": 7}),
    "not an object": _cursor(["2026-01-01T00:00:00+00:00"]),
    "a NUL": _cursor({"p": ["2026-01-01T00:00:00+00:00\x00", str(uuid.uuid4())]}),
}


@pytest.mark.parametrize("cursor", TAMPERED.values(), ids=TAMPERED.keys())
def test_a_cursor_the_api_did_not_give_is_400_invalid_cursor(requester, requester_api,
                                                             cursor):
    add_requests(requester, 3)

    response = requester_api.get(REQUESTS, {"cursor": cursor})

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_cursor"
    assert list(error["fields"]) == ["cursor"]


def test_a_cursor_past_the_last_request_answers_an_empty_page_leading_back(requester,
                                                                         requester_api):
    rows = add_requests(requester, 3)
    last = requester_api.get(REQUESTS, {"page_size": 2}).json()["next"]
    ResourceRequest.objects.filter(pk=rows[0].pk).delete()

    page = requester_api.get(last).json()
    back = requester_api.get(page["previous"]).json()

    assert (page["results"], page["next"]) == ([], None)
    assert [item["id"] for item in back["results"]] == newest_first(rows[1:])


def test_a_resource_cursor_with_a_nul_is_400(requester_api):
    cursor = _cursor({"p": ["alpha\x00", "s3_bucket", "apple", str(uuid.uuid4())]})

    response = requester_api.get(RESOURCES, {"cursor": cursor})

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_cursor"


def test_a_cursor_cut_short_is_400(requester, requester_api):
    add_requests(requester, 3)
    link = requester_api.get(REQUESTS, {"page_size": 1}).json()["next"]
    cursor = parse_qs(urlsplit(link).query)["cursor"][0]

    response = requester_api.get(REQUESTS, {"page_size": 1, "cursor": cursor[:-6]})

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_cursor"


def test_a_page_number_is_400_saying_to_follow_next(requester_api):
    response = requester_api.get(REQUESTS, {"page": "2"})

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_page"
    assert "follow each page's `next` link" in error["fields"]["page"][0]


def test_page_size_is_honoured_and_kept_in_the_links(requester, requester_api):
    add_requests(requester, 5)

    first = requester_api.get(REQUESTS, {"page_size": 2}).json()

    assert len(first["results"]) == 2
    assert "page_size=2" in first["next"]


def test_the_default_page_is_50(requester, requester_api):
    add_requests(requester, 51)

    assert len(requester_api.get(REQUESTS).json()["results"]) == 50


def test_the_largest_page_size_is_accepted(requester, requester_api):
    add_requests(requester, MAX_PAGE_SIZE + 1)

    response = requester_api.get(RESOURCES, {"page_size": MAX_PAGE_SIZE})
    assert response.status_code == 200
    assert len(requester_api.get(REQUESTS, {"page_size": MAX_PAGE_SIZE}).json()["results"]) == (
        MAX_PAGE_SIZE)


@pytest.mark.parametrize("size", [str(MAX_PAGE_SIZE + 1), "0", "-5", "ten", "2.5"])
def test_a_page_size_out_of_range_is_400_saying_the_range(requester_api, size):
    response = requester_api.get(REQUESTS, {"page_size": size})

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_page_size"
    assert list(error["fields"]) == ["page_size"]
    assert f"from 1 to {MAX_PAGE_SIZE}" in error["message"]


def _queries(client, url: str, query: dict) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, query)
    assert response.status_code == 200, response.content
    return len(captured)


def _third_page(client, url: str) -> dict:
    """The query of the third page of 5, as the second page's `next` link gives it."""
    second = client.get(client.get(url, {"page_size": 5}).json()["next"]).json()
    return {key: values[0] for key, values in parse_qs(urlsplit(second["next"]).query).items()}


def add_resources(user: User, count: int, *, first: int = 0) -> None:
    Resource.objects.bulk_create(
        Resource(environment=made.environment, resource_type=made.resource_type,
                 name=made.name, physical_name=made.physical_name,
                 physical_id=made.physical_name, arn=f"arn:aws:s3:::{made.physical_name}",
                 team=made.team, created_by_request=made)
        for made in add_requests(user, count, first=first, status=RequestStatus.SUCCEEDED))


@pytest.mark.parametrize("role", ["requester", "superuser"])
@pytest.mark.parametrize(("url", "add"), [(REQUESTS, add_requests), (RESOURCES, add_resources)],
                         ids=["requests", "resources"])
def test_a_page_costs_the_same_queries_with_20_or_200_rows_at_any_depth(
        api_as, requester, role, url, add):
    client = api_as(role)
    add(requester, 20)
    small = [_queries(client, url, {"page_size": 5}),
             _queries(client, url, _third_page(client, url))]

    add(requester, 180, first=20)
    large = [_queries(client, url, {"page_size": 5}),
             _queries(client, url, _third_page(client, url))]

    assert small == large
    assert small[0] == small[1]
