"""One request in flight per resource, under real concurrency: many threads, each with its
own PostgreSQL connection, released together at a barrier, against the real API views.
The database's constraint decides every race; no timing makes two requests in flight.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from provisioning.models import IN_FLIGHT_STATUSES, RequestStatus, ResourceRequest
from tests.api.conftest import BODY, REQUESTS, error_of, request_url, resource_url

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20


def all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread (and database connection), all released together."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait(timeout=30)
            return call()
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def in_flight(name: str) -> list[ResourceRequest]:
    return list(ResourceRequest.objects.filter(name=name, status__in=IN_FLIGHT_STATUSES))


def test_twenty_simultaneous_creates_from_two_teams_accept_exactly_one(
    requester_api, other_operator_api
):
    clients: list[APIClient] = [requester_api, other_operator_api] * (THREADS // 2)

    answers = all_at_once([
        lambda client=client: client.post(REQUESTS, {**BODY, "name": "race"}, format="json")
        for client in clients
    ])

    assert Counter(a.status_code for a in answers) == {202: 1, 409: THREADS - 1}
    [winner] = in_flight("race")
    for answer, client in zip(answers, clients, strict=True):
        if answer.status_code == 409:
            error = error_of(answer)
            assert error["code"] == "request_in_flight"
            if client is not (requester_api if winner.team.name == "platform"
                              else other_operator_api):
                assert str(winner.pk) not in error["message"], error
                assert "another team's request" in error["message"]


def test_simultaneous_updates_with_one_key_and_body_all_get_the_one_request(
    requester, requester_api, resource_of
):
    resource = resource_of(requester, "shared")
    body = {**BODY, "name": "shared", "action": "update", "spec": {"versioning": False}}
    headers = {"Idempotency-Key": "deploy-update-1"}

    answers = all_at_once([
        lambda: requester_api.post(REQUESTS, body, format="json", headers=headers)
    ] * THREADS)

    assert Counter(a.status_code for a in answers) == {202: 1, 200: THREADS - 1}, [
        a.json() for a in answers if a.status_code >= 400]
    assert {a.json()["id"] for a in answers} == {str(in_flight("shared")[0].pk)}
    assert ResourceRequest.objects.filter(resource=resource, action="update").count() == 1


def test_simultaneous_deletes_with_one_key_all_get_the_one_request(
    requester, requester_api, resource_of
):
    resource = resource_of(requester, "doomed")
    headers = {"Idempotency-Key": "cleanup-7"}

    answers = all_at_once([
        lambda: requester_api.delete(resource_url(resource.pk), headers=headers)
    ] * THREADS)

    assert Counter(a.status_code for a in answers) == {202: 1, 200: THREADS - 1}, [
        a.json() for a in answers if a.status_code >= 400]
    [delete] = ResourceRequest.objects.filter(resource=resource, action="delete")
    assert {a.json()["id"] for a in answers} == {str(delete.pk)}


def test_simultaneous_retries_of_two_failed_creates_of_one_name_put_one_back_in_flight(
    requester, operator_api, request_in
):
    # Two creates of one name that both failed: each may be retried, not both at once.
    failed = [request_in(requester, RequestStatus.FAILED, name="twice") for _ in range(2)]

    answers = all_at_once([
        lambda request=request: operator_api.post(request_url(request.pk, "retry"))
        for request in failed * (THREADS // 2)
    ])

    assert Counter(a.status_code for a in answers) == {200: 1, 409: THREADS - 1}
    assert len(in_flight("twice")) == 1
    codes = {error_of(a)["code"] for a in answers if a.status_code == 409}
    # The retried one itself answers "not failed any more"; the other meets the one in flight.
    assert codes <= {"request_in_flight", "invalid_transition"}
    assert "request_in_flight" in codes
