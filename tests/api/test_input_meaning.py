"""Input that means two things is refused, naming what is wrong: a key given twice, a
reserved tag prefix in any letter case, a time without a zone, a not_before beyond the
horizon. And a key replayed by someone who has left the team finds nothing, as GET does."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import ResourceRequest
from tests.api.conftest import REQUESTS, error_of, request_url

pytestmark = pytest.mark.django_db


def post_raw(client, text: str):
    return client.generic("POST", REQUESTS, text, content_type="application/json")


@pytest.mark.parametrize("text, key", [
    ('{"environment": "alpha", "environment": "prod", "resource_type": "s3_bucket", '
     '"name": "orders"}', "environment"),
    ('{"environment": "alpha", "resource_type": "s3_bucket", "name": "orders", '
     '"spec": {"versioning": true, "versioning": false}}', "versioning"),
])
def test_a_body_with_a_key_given_twice_is_refused_naming_the_key(requester_api, text, key):
    answer = post_raw(requester_api, text)

    assert answer.status_code == 400
    error = error_of(answer)
    assert error["code"] == "duplicate_key"
    assert f"'{key}' appears more than once" in error["message"]
    assert not ResourceRequest.objects.exists()


@pytest.mark.parametrize("key", ["krp:team", "KRP:team", "Krp:owner", "aws:x", "AWS:x",
                                 "aWs:created"])
def test_reserved_tag_prefixes_are_refused_in_any_letter_case(requester_api, submit, key):
    answer = submit(requester_api, tags={key: "payments"})

    assert answer.status_code == 400
    assert error_of(answer)["fields"] == {
        f"tags.{key}": ["keys starting with krp: or aws: are reserved"]}


@pytest.mark.parametrize("field", ["not_before", "deadline"])
@pytest.mark.parametrize("value", ["2030-01-01T09:00:00", "2030-01-01"])
def test_a_time_without_a_zone_is_refused_naming_the_field(requester_api, submit, field,
                                                           value):
    answer = submit(requester_api, **{field: value})

    assert answer.status_code == 400
    error = error_of(answer)
    assert list(error["fields"]) == [field]
    assert "time zone" in error["fields"][field][0]


def test_not_before_beyond_the_horizon_is_refused_and_within_it_accepted(requester_api,
                                                                        submit):
    now = timezone.now()

    too_far = submit(requester_api, name="later",
                     not_before=(now + timedelta(days=31)).isoformat())
    near = submit(requester_api, name="soon", not_before=(now + timedelta(days=29)).isoformat())

    assert too_far.status_code == 400
    assert error_of(too_far)["fields"] == {
        "not_before": ["at most 30 days ahead (KRP_NOT_BEFORE_HORIZON_DAYS)"]}
    assert near.status_code == 202, near.json()


def test_a_key_replayed_by_someone_who_left_the_team_finds_nothing(requester, requester_api,
                                                                   submit, team, other_team):
    headers = {"Idempotency-Key": "deploy-99"}
    first = submit(requester_api, headers=headers)
    assert first.status_code == 202
    requester.groups.remove(team)
    requester.groups.add(other_team)

    replay = submit(requester_api, headers=headers)

    assert requester_api.get(request_url(first.json()["id"])).status_code == 404
    assert replay.status_code == 404, replay.json()
    assert first.json()["id"] not in json.dumps(replay.json())
    assert ResourceRequest.objects.count() == 1
