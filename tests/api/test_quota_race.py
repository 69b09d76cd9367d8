"""The last slot of a quota under real concurrency: threads with their own PostgreSQL
connections, released together at a barrier, against the real API view. The quota's locked
row decides the race, not a count two submissions read at once."""

from __future__ import annotations

from collections import Counter

import pytest

from provisioning.models import IN_FLIGHT_STATUSES, Quota, ResourceRequest
from tests.api.conftest import BODY, REQUESTS
from tests.api.test_concurrency import all_at_once

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


@pytest.fixture(autouse=True)
def _broker(broker):
    """Accepted requests are published after commit; the test broker's queues start
    empty."""
    broker.empty()


def test_simultaneous_submits_for_the_last_slot_accept_exactly_one(requester_api, team):
    Quota.objects.create(team=team, environment="alpha", resource_type="s3_bucket",
                         max_live=1)

    answers = all_at_once([
        lambda index=index: requester_api.post(REQUESTS, {**BODY, "name": f"slot-{index}"},
                                               format="json")
        for index in range(THREADS)
    ])

    assert Counter(a.status_code for a in answers) == {202: 1, 409: THREADS - 1}
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
        "quota_exceeded"}
    assert ResourceRequest.objects.filter(team=team, status__in=IN_FLIGHT_STATUSES).count() == 1
