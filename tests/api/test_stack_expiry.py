"""A stack's time to live through the API: a document's (or a blueprint body's) ttl, the
stack's expiry in its detail and list, POST /api/v1/stacks/{id}/extend/, and a member's
resource, which expires with its stack and cannot be extended alone."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from provisioning.models import Resource, Stack
from provisioning.services.lifetimes import expiry_fields
from tests.api.conftest import error_of, resource_url
from tests.fixtures.stacks import drive, stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

STACKS = "/api/v1/stacks/"


def bucket_stack(**lifetime) -> dict:
    return {"environment": "zeta", "name": stack_name("api"),
            "members": {"logs": {"resource_type": "s3_bucket", "spec": {}}}, **lifetime}


@pytest.fixture
def warned(requester_api) -> Stack:
    """Rita's stack in zeta, succeeded, expiring in a day, its team already warned once."""
    response = requester_api.post(STACKS, bucket_stack(ttl="1d"), format="json")
    assert response.status_code == 202, response.json()
    stack = drive(Stack.objects.get(pk=response.json()["id"]))
    Stack.objects.filter(pk=stack.pk).update(**{
        **expiry_fields(environment="zeta", expires_at=timezone.now() + timedelta(days=1)),
        "expiry_warnings": [{"before": "3s", "left": "2s", "sent_at": "2026-01-01T00:00:00Z"}]})
    return stack


def extend(client, stack, **body):
    return client.post(f"{STACKS}{stack.pk}/extend/", body, format="json")


def test_a_stack_without_a_ttl_where_one_is_required_answers_400_with_its_other_problems(
        requester_api):
    document = bucket_stack()
    document["members"]["logs"]["spec"] = {"versioning": "sometimes"}

    response = requester_api.post(STACKS, document, format="json")

    assert response.status_code == 400
    fields = error_of(response)["fields"]
    assert fields["ttl"] == ["zeta requires a ttl or expires_at (at most 7d)"]
    assert any(field.startswith("members.logs.") for field in fields)


def test_a_blueprint_body_and_a_dry_run_take_a_ttl_too(requester_api):
    response = requester_api.post(STACKS, {"blueprint": "queue-with-dlq", "environment":
                                           "zeta", "name": stack_name("bp"), "ttl": "8d"},
                                  format="json")
    assert (response.status_code, error_of(response)["fields"]) == (
        400, {"ttl": ["at most 7d in zeta"]})

    dry = requester_api.post(f"{STACKS}?dry_run=true", bucket_stack(ttl="1d"), format="json")
    assert dry.status_code == 200, dry.json()
    assert not Stack.objects.exists()


def test_detail_and_list_show_the_stacks_expiry_and_its_warnings(requester_api, warned):
    detail = requester_api.get(f"{STACKS}{warned.pk}/").json()
    (listed,) = requester_api.get(STACKS).json()["results"]

    for shown in (detail, listed):
        assert shown["ttl"] == "1d"
        assert parse_datetime(shown["expires_at"]) == Stack.objects.get(
            pk=warned.pk).expires_at
        assert [w["before"] for w in shown["expiry_warnings"]] == ["3s"]
        assert shown["expiry_problem"] == ""


def test_extend_sets_a_new_expiry_from_now_resets_warnings_and_records_who(requester_api,
                                                                          warned):
    before = timezone.now()

    response = extend(requester_api, warned, ttl="3d")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert before + timedelta(days=3) <= parse_datetime(body["expires_at"]) <= (
        timezone.now() + timedelta(days=3))
    assert body["expiry_warnings"] == []
    event = body["events"][-1]
    assert (event["to_status"], event["actor"]) == ("extended", "rita")


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"ttl": "8d"}, "ttl", "at most 7d in zeta"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at", "must be in the future"),
    ({}, "ttl", "give ttl or expires_at"),
])
def test_extend_out_of_bounds_answers_400_naming_the_field(requester_api, warned, body,
                                                           field, message):
    response = extend(requester_api, warned, **body)

    assert response.status_code == 400
    assert error_of(response)["fields"][field] == [message]


def test_extend_of_another_teams_stack_answers_404(other_operator_api, warned):
    assert extend(other_operator_api, warned, ttl="1d").status_code == 404


def test_extending_a_members_resource_answers_409_naming_the_stack(requester_api, warned):
    (resource,) = Resource.objects.filter(created_by_request__stack=warned)

    response = requester_api.post(resource_url(resource.pk) + "extend/", {"ttl": "1d"},
                                  format="json")

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "stack_member"
    assert f"stack zeta/{warned.name}" in error["message"]
    assert f"/api/v1/stacks/{warned.pk}/extend/" in error["message"]


def test_an_update_giving_a_member_its_own_ttl_answers_400_naming_the_stack(requester_api,
                                                                           warned):
    response = requester_api.post("/api/v1/requests/", {
        "environment": "zeta", "resource_type": "s3_bucket", "name": f"{warned.name}-logs",
        "action": "update", "spec": {}, "ttl": "1d"}, format="json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "stack_member"
    assert f"/api/v1/stacks/{warned.pk}/extend/" in error_of(response)["fields"]["ttl"][0]
