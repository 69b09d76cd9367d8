"""The admin's lists count only up to a bound: past it a list says "N+", its pages stop
where the bound falls (a page number past it shows the last page, not an error), and a list
view costs the same queries however many rows the table holds. The bound is 10,000; these
tests lower it (BoundedCountPaginator.count_cap) rather than make 10,000 rows."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from provisioning.admin.base import BoundedCountPaginator
from provisioning.admin.requests import ResourceRequestAdmin
from provisioning.models import RequestStatus, ResourceRequest

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:provisioning_resourcerequest_changelist")


@pytest.fixture
def cap(monkeypatch):
    def lower(to: int) -> None:
        monkeypatch.setattr(BoundedCountPaginator, "count_cap", to)
    return lower


def add_requests(user: User, count: int, *, first: int = 0,
                 status: str = RequestStatus.QUEUED) -> None:
    ResourceRequest.objects.bulk_create(
        ResourceRequest(environment="alpha", resource_type="s3_bucket",
                        name=f"bucket-{number:04d}", status=status, requested_by=user,
                        team=user.groups.get(), physical_name=f"krp-bucket-{number}",
                        task_id=str(uuid.uuid4()))
        for number in range(first, first + count))


def counted(page) -> str:
    """What the list says it holds, under its rows."""
    text = page.content.decode()
    return re.search(r'<p class="paginator">.*?([\d,]+\+?) resource requests?\s',
                     text, re.S).group(1)


def shown(page) -> list[str]:
    """The requests listed, in order (each row names its request more than once)."""
    return list(dict.fromkeys(re.findall(r"create s3_bucket alpha/(bucket-\d+)",
                                         page.content.decode())))


def test_a_list_longer_than_the_cap_says_cap_plus(client, root, requester, cap):
    cap(5)
    add_requests(requester, 12)
    client.force_login(root)

    page = client.get(CHANGELIST)

    assert page.status_code == 200
    assert counted(page) == "5+"
    assert len(shown(page)) == 12


def test_a_list_within_the_cap_says_its_count(client, root, requester, cap):
    cap(5)
    add_requests(requester, 4)
    client.force_login(root)

    assert counted(client.get(CHANGELIST)) == "4"


def test_the_cap_is_shown_with_thousands_separated(client, root, requester, cap):
    cap(1_000)
    add_requests(requester, 1_001)
    client.force_login(root)

    assert counted(client.get(CHANGELIST)) == "1,000+"


def test_a_search_past_the_cap_says_cap_plus_results(client, root, requester, cap):
    cap(3)
    add_requests(requester, 6)
    client.force_login(root)

    page = client.get(CHANGELIST, {"q": "bucket"})

    assert "3+ results" in page.content.decode()


def test_pages_stop_where_the_cap_falls_and_a_page_past_it_shows_the_last(
        client, root, requester, cap, monkeypatch):
    cap(6)
    monkeypatch.setattr(ResourceRequestAdmin, "list_per_page", 2)
    add_requests(requester, 12)
    client.force_login(root)

    pages = [shown(client.get(CHANGELIST, {"p": str(number)})) for number in (1, 2, 3)]
    past = client.get(CHANGELIST, {"p": "6"})

    # The six newest rows, in three full pages, each row once.
    assert [len(page) for page in pages] == [2, 2, 2]
    assert len({name for page in pages for name in page}) == 6
    assert (past.status_code, shown(past)) == (200, pages[2])
    assert 'href="?p=3"' in past.content.decode()
    assert 'href="?p=4"' not in past.content.decode()


def _queries(client, query: dict) -> int:
    with CaptureQueriesContext(connection) as captured:
        page = client.get(CHANGELIST, query)
    assert page.status_code == 200
    return len(captured)


QUERIES = {"first page": {}, "a filter": {"status__exact": "failed"},
           "a search": {"q": "bucket"}, "page 2": {"p": "2"}}


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
def test_a_list_costs_the_same_queries_with_50_or_500_rows(client, root, requester, cap,
                                                           query):
    cap(100)
    client.force_login(root)
    add_requests(requester, 25)
    add_requests(requester, 25, first=25, status=RequestStatus.FAILED)
    few = _queries(client, query)

    add_requests(requester, 225, first=50)
    add_requests(requester, 225, first=275, status=RequestStatus.FAILED)
    many = _queries(client, query)

    assert many == few
