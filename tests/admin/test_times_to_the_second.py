"""Times in the admin are given to the second with their zone named (UTC), in lists, on
pages and in a request's events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from provisioning.models import RequestEvent, ResourceRequest
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
SHOWN = "2026-03-04 05:06:07 UTC"


@pytest.fixture
def request_at(requester):
    request = submit(requester, "timed")
    ResourceRequest.objects.filter(pk=request.pk).update(created_at=AT)
    RequestEvent.objects.filter(request=request).update(created_at=AT)
    return request


def test_the_request_list_gives_times_to_the_second_in_utc(client, staff_operator, request_at):
    client.force_login(staff_operator)

    listing = client.get(reverse("admin:provisioning_resourcerequest_changelist"))

    assert SHOWN in listing.content.decode()


def test_a_requests_page_and_its_events_give_times_to_the_second_in_utc(
    client, staff_operator, request_at
):
    client.force_login(staff_operator)

    text = client.get(reverse("admin:provisioning_resourcerequest_change",
                              args=[request_at.pk])).content.decode()

    # Its created time, and its one event's.
    assert text.count(SHOWN) == 2


def test_the_events_list_gives_times_to_the_second_in_utc(client, staff_operator, request_at):
    client.force_login(staff_operator)

    listing = client.get(reverse("admin:provisioning_requestevent_changelist"))

    assert SHOWN in listing.content.decode()
