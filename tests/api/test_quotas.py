"""Quotas at the API: a submit beyond a team's quota is a 409 naming the quota and its use
(with the facts as data), updates and deletes never count against max_live, a quota for
any type covers every type, a stack may not pass a quota, and GET /api/v1/quotas/ shows a
team's use moving as it asks for things."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission

from provisioning.models import Quota, RequestStatus, Stack, StackStatus
from tests.api.conftest import BODY, REQUESTS
from tests.fixtures.stacks import stack_name

pytestmark = pytest.mark.django_db

QUOTAS = "/api/v1/quotas/"
STACKS = "/api/v1/stacks/"


def quota(team: Group, environment: str = "alpha", resource_type: str = "s3_bucket",
          **limits: Any) -> Quota:
    return Quota.objects.create(team=team, environment=environment,
                                resource_type=resource_type, **limits)


def quota_error(response) -> dict[str, Any]:
    """The one error shape, with the quota's facts beside code, message and fields."""
    assert response.status_code == 409, response.json()
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields", "quota"}, error
    assert error["code"] == "quota_exceeded"
    return error


def test_a_create_over_max_live_is_refused_naming_the_quota_and_its_use(
        requester_api, requester, team, resource_of, submit):
    resource_of(requester, "first")
    quota(team, max_live=2)
    assert submit(requester_api, name="second").status_code == 202  # being created

    error = quota_error(submit(requester_api, name="third"))

    assert error["message"] == ("team platform's quota for s3_bucket in alpha is 2 live "
                                "resources; it has 2 (1 live, 1 being created)")
    assert error["quota"] == [{
        "team": "platform", "environment": "alpha", "resource_type": "s3_bucket",
        "limit": "max_live", "max": 2, "live": 1, "being_created": 1, "in_flight": 1,
        "adding": 1}]


def test_a_submit_over_max_in_flight_is_refused(requester_api, team, submit):
    quota(team, max_in_flight=1)
    assert submit(requester_api, name="first").status_code == 202

    error = quota_error(submit(requester_api, name="second"))

    assert error["message"] == ("team platform's quota for s3_bucket in alpha is 1 requests "
                                "in flight; it has 1")
    assert error["quota"][0]["limit"] == "max_in_flight"


def test_updates_and_deletes_do_not_count_against_max_live(
        requester_api, requester, team, resource_of, submit):
    resource_of(requester, "kept")
    resource_of(requester, "gone")
    quota(team, max_live=2)

    update = submit(requester_api, name="kept", action="update", spec={"versioning": False})
    delete = submit(requester_api, name="gone", action="delete", spec={})

    assert (update.status_code, delete.status_code) == (202, 202), delete.json()
    assert quota_error(submit(requester_api, name="third"))["quota"][0]["live"] == 2


def test_a_quota_for_any_type_covers_every_type(requester_api, team, submit):
    quota(team, resource_type="", max_live=1)
    assert submit(requester_api, name="bucket").status_code == 202

    error = quota_error(submit(requester_api, name="jobs", resource_type="sqs_queue",
                               spec={}))

    assert error["message"].startswith("team platform's quota for any type in alpha is 1 "
                                       "live resources")
    assert error["quota"][0]["resource_type"] is None


def test_another_teams_quota_does_not_apply(requester_api, other_team, submit):
    quota(other_team, max_live=0)

    assert submit(requester_api).status_code == 202


def test_a_stack_over_quota_is_refused_naming_the_members_that_do_not_fit(
        requester_api, team, submit):
    quota(team, resource_type="sqs_queue", max_live=2)
    assert submit(requester_api, name="jobs", resource_type="sqs_queue",
                  spec={}).status_code == 202
    document = {"environment": "alpha", "name": stack_name("q"), "members": {
        key: {"resource_type": "sqs_queue", "spec": {}} for key in ("a", "b", "c")}}

    error = quota_error(requester_api.post(STACKS, document, format="json"))

    assert error["message"] == (
        "team platform's quota for sqs_queue in alpha is 2 live resources; it has 1 (0 "
        "live, 1 being created); the stack adds 3, and members b, c do not fit")
    assert error["quota"][0]["members"] == ["b", "c"]


def test_the_quota_list_shows_use_moving_as_requests_are_made(requester_api, team, submit):
    quota(team, max_live=5, max_in_flight=3)

    def listed() -> list[dict[str, Any]]:
        response = requester_api.get(QUOTAS)
        assert response.status_code == 200, response.json()
        return response.json()["results"]

    before = listed()
    submit(requester_api, name="one")
    submit(requester_api, name="two")

    assert before == [{"team": "platform", "environment": "alpha",
                       "resource_type": "s3_bucket", "max_live": 5, "live": 0,
                       "being_created": 0, "max_in_flight": 3, "in_flight": 0}]
    assert (listed()[0]["live"], listed()[0]["in_flight"]) == (2, 2)


def test_the_quota_list_shows_only_your_teams_unless_you_set_quotas(
        requester_api, other_operator_api, other_operator, team, other_team):
    quota(team, max_live=1)
    quota(other_team, max_live=1)
    other_operator.user_permissions.add(Permission.objects.get(codename="change_quota"))

    mine = [row["team"] for row in requester_api.get(QUOTAS).json()["results"]]
    every = [row["team"] for row in other_operator_api.get(QUOTAS).json()["results"]]

    assert (mine, sorted(every)) == (["platform"], ["data", "platform"])


def test_the_quota_list_filters_by_known_values(requester_api, team):
    quota(team, environment="", max_live=1)
    quota(team, environment="prod", resource_type="sqs_queue", max_live=1)

    alpha = requester_api.get(QUOTAS, {"environment": "alpha"}).json()["results"]
    unknown = requester_api.get(QUOTAS, {"environment": "staging"})

    assert [(row["environment"], row["resource_type"]) for row in alpha] == [
        (None, "s3_bucket")]
    assert unknown.status_code == 400
    assert unknown.json()["error"]["fields"]["environment"]


def test_a_request_no_quota_covers_is_recorded_as_before(requester_api, team):
    quota(team, environment="prod", max_live=0)

    response = requester_api.post(REQUESTS, BODY, format="json")

    assert response.json()["status"] == RequestStatus.QUEUED


def test_a_retry_beyond_quota_is_refused(requester_api, requester, team, request_in):
    failed = request_in(requester, RequestStatus.FAILED, name="failed")
    request_in(requester, RequestStatus.QUEUED, name="queued")
    quota(team, max_live=1)

    error = quota_error(requester_api.post(f"{REQUESTS}{failed.pk}/retry/"))

    assert error["quota"][0]["being_created"] == 1


def test_an_update_in_an_auto_approving_environment_follows_requires_approval(
        requester_api, requester, team, resource_of, submit):
    resource_of(requester, "kept", environment="theta")
    quota(team, environment="theta", max_live=5)

    update = submit(requester_api, name="kept", environment="theta", action="update",
                    spec={"versioning": False})

    assert update.json()["status"] == RequestStatus.PENDING_APPROVAL
    assert update.json()["events"][0]["message"] == "submitted; theta requires approval"


def test_a_stack_retry_beyond_quota_is_refused(requester_api, requester, team):
    document = {"environment": "prod", "name": stack_name("again"), "members": {
        "jobs": {"resource_type": "sqs_queue", "spec": {}}}}
    stack_id = requester_api.post(STACKS, document, format="json").json()["id"]
    # As a failed run leaves it: nothing held, its member to be asked for anew.
    Stack.objects.filter(pk=stack_id).update(status=StackStatus.FAILED,
                                             error_code="member_failed")
    quota(team, environment="prod", resource_type="sqs_queue", max_live=0)

    error = quota_error(requester_api.post(f"{STACKS}{stack_id}/retry/"))

    assert error["quota"][0]["members"] == ["jobs"]
    assert Stack.objects.get(pk=stack_id).status == StackStatus.FAILED
