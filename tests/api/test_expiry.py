"""Expiry through the API: a request's ttl, a resource's expiry and its warnings, and
POST /api/v1/resources/{id}/extend/."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from provisioning.models import Resource
from provisioning.services.lifetimes import expiry_fields
from tests.api.conftest import REQUESTS, error_of, resource_url
from tests.fixtures.inventory import resource_in

pytestmark = pytest.mark.django_db


def extend_url(resource) -> str:
    return resource_url(resource.pk) + "extend/"


@pytest.fixture
def warned(requester) -> Resource:
    """Rita's bucket in zeta, expiring in a day, its owners already warned once."""
    resource = resource_in(requester, "ledger", environment="zeta", ttl="1d")
    Resource.objects.filter(pk=resource.pk).update(**{
        **expiry_fields(environment="zeta", expires_at=timezone.now() + timedelta(days=1)),
        "expiry_warnings": [{"before": "2d", "left": "1d", "sent_at": "2026-01-01T00:00:00Z"}]})
    return resource


def test_a_request_answers_the_ttl_it_asked_for(requester_api, submit):
    response = submit(requester_api, environment="zeta", ttl="36h")

    assert response.status_code == 202, response.json()
    assert (response.json()["ttl"], response.json()["expires_at"]) == ("1d12h", None)


def test_ttl_and_expires_at_together_answer_400_naming_both(requester_api, submit):
    response = submit(requester_api, environment="zeta", ttl="1d",
                      expires_at="2030-01-01T00:00:00Z")

    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"ttl", "expires_at"}


def test_a_replay_with_another_ttl_is_a_different_body(requester_api, submit):
    first = submit(requester_api, environment="zeta", ttl="1d", headers={"Idempotency-Key": "k"})
    again = submit(requester_api, environment="zeta", ttl="2d", headers={"Idempotency-Key": "k"})

    assert (first.status_code, again.status_code) == (202, 409)


def test_the_resource_shows_its_expiry_and_the_warnings_sent(requester_api, warned):
    body = requester_api.get(resource_url(warned.pk)).json()

    assert parse_datetime(body["expires_at"]) == Resource.objects.get(pk=warned.pk).expires_at
    assert body["expiry_warnings"] == [
        {"before": "2d", "left": "1d", "sent_at": "2026-01-01T00:00:00Z"}]


def test_the_owner_extends_within_the_bound_and_the_warnings_reset(requester_api, warned):
    before = timezone.now()

    response = requester_api.post(extend_url(warned), {"ttl": "3d"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert before + timedelta(days=3) <= parse_datetime(body["expires_at"]) <= (
        timezone.now() + timedelta(days=3))
    assert body["expiry_warnings"] == []
    event = warned.events.get()
    assert (event.to_status, event.actor) == ("extended", "rita")


def test_extending_beyond_the_bound_answers_400(requester_api, warned):
    response = requester_api.post(extend_url(warned), {"ttl": "8d"}, format="json")

    assert response.status_code == 400
    assert error_of(response)["fields"] == {"ttl": ["at most 7d in zeta"]}


def test_another_teams_resource_cannot_be_extended(other_operator_api, warned):
    response = other_operator_api.post(extend_url(warned), {"ttl": "1d"}, format="json")

    assert response.status_code == 404
    assert Resource.objects.get(pk=warned.pk).expiry_warnings  # unchanged


def test_a_resource_without_an_expiry_gets_one(requester_api, requester):
    forever = resource_in(requester, "archive")
    moment = "2030-01-01T00:00:00Z"

    response = requester_api.post(extend_url(forever), {"expires_at": moment}, format="json")

    assert response.status_code == 200, response.json()
    assert parse_datetime(response.json()["expires_at"]) == parse_datetime(moment)


def test_an_environment_shows_its_bound(requester_api):
    zeta = next(e for e in requester_api.get("/api/v1/environments/").json()
                if e["name"] == "zeta")

    assert (zeta["max_ttl"], zeta["requires_ttl"]) == ("7d", True)


def test_a_request_body_names_a_bad_ttl_with_the_other_problems(requester_api):
    response = requester_api.post(REQUESTS, {"environment": "zeta", "resource_type": "s3_bucket",
                                             "name": "ledger", "ttl": "soon", "tags": []},
                                  format="json")

    assert response.status_code == 400
    assert {"ttl", "tags"} <= set(error_of(response)["fields"])
