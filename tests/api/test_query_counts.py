"""The accept path's cost in SQL: a POST to /api/v1/requests/ with a token makes at most
six queries, authentication, BEGIN and COMMIT included, whether or not it carries an
Idempotency-Key, whether its environment needs approval or not, and a replay of a key makes
no more. Whether the team has a quota there is read in the same query as the rest; where it
has one, the submission locks it and counts the team's use: two queries more. Announcing
the submission to the team's notification channels costs a team without one nothing (the
same query says it has none), and a team with one four: its channels, and BEGIN, INSERT,
COMMIT of their deliveries (one bulk INSERT whatever their number).

Transactional tests: the request's own transaction is then a real one, as under a web
server (inside a test's transaction it would be a savepoint, two statements more), and
the publish after commit runs, so its statements are counted too.
"""

from __future__ import annotations

import pytest
from django.test import Client

from provisioning.models import Delivery, Quota, RequestStatus, ResourceRequest
from tests.api.conftest import BODY, REQUESTS
from tests.fixtures.receivers import register_channel

MAX_QUERIES = 6
ENVIRONMENTS = [("alpha", RequestStatus.QUEUED), ("prod", RequestStatus.PENDING_APPROVAL)]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _broker(broker):
    """Publishing needs the test broker; its queues start empty."""
    broker.empty()


@pytest.fixture
def session_api(requester) -> Client:
    client = Client()
    client.force_login(requester)
    return client


@pytest.mark.parametrize(("environment", "status"), ENVIRONMENTS)
def test_submit_without_a_key_makes_at_most_six_queries(
        requester_api, environment, status, django_assert_max_num_queries):
    with django_assert_max_num_queries(MAX_QUERIES):
        response = requester_api.post(REQUESTS, {**BODY, "environment": environment},
                                      format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == status


@pytest.mark.parametrize(("environment", "status"), ENVIRONMENTS)
def test_submit_with_a_key_makes_at_most_six_queries(
        requester_api, environment, status, django_assert_max_num_queries):
    with django_assert_max_num_queries(MAX_QUERIES):
        response = requester_api.post(REQUESTS, {**BODY, "environment": environment},
                                      format="json", headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == status


@pytest.mark.parametrize(("environment", "status"), ENVIRONMENTS)
def test_replay_of_a_key_makes_at_most_six_queries(
        requester_api, environment, status, django_assert_max_num_queries):
    body = {**BODY, "environment": environment}
    first = requester_api.post(REQUESTS, body, format="json",
                               headers={"Idempotency-Key": "k-1"})
    with django_assert_max_num_queries(MAX_QUERIES):
        replay = requester_api.post(REQUESTS, body, format="json",
                                    headers={"Idempotency-Key": "k-1"})
    assert replay.status_code == 200, replay.json()
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["status"] == status


@pytest.mark.parametrize(("environment", "status"), ENVIRONMENTS)
def test_submit_in_a_logged_in_session_costs_one_query_more_than_with_a_token(
        session_api, environment, status, django_assert_max_num_queries):
    # A session is two reads (the session, then its user) where a token is one.
    with django_assert_max_num_queries(MAX_QUERIES + 1):
        response = session_api.post(REQUESTS, {**BODY, "environment": environment},
                                    content_type="application/json")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == status


@pytest.mark.parametrize(("environment", "status"), ENVIRONMENTS)
def test_submit_under_a_quota_makes_two_queries_more(
        requester_api, team, environment, status, django_assert_max_num_queries):
    Quota.objects.create(team=team, environment=environment, resource_type="s3_bucket",
                         max_live=5)
    with django_assert_max_num_queries(MAX_QUERIES + 2):
        response = requester_api.post(REQUESTS, {**BODY, "environment": environment},
                                      format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == status


def test_the_published_request_is_marked_published(requester_api):
    """The publish after commit still records that its message went out."""
    response = requester_api.post(REQUESTS, BODY, format="json")
    request = ResourceRequest.objects.get(pk=response.json()["id"])
    assert request.published_at is not None


def test_a_team_with_a_notification_channel_pays_four_queries_more(
        requester_api, team, django_assert_max_num_queries):
    # A closed loopback port: a worker that takes the delivery reaches nothing outside.
    register_channel(team, "http://127.0.0.1:9/krp", ["submitted"])

    with django_assert_max_num_queries(MAX_QUERIES + 4):
        response = requester_api.post(REQUESTS, BODY, format="json")

    assert response.status_code == 202, response.json()
    assert Delivery.objects.filter(event="submitted").count() == 1
