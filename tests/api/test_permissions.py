"""Who may do what, as one table: a user sees and acts on their own teams' requests and
resources only; another team's are not there for them (404, never 403, so ids do not leak).

    rita   (requester, platform)         tess (teammate, platform, no permission)
    otto   (operator, platform, approve) dana (operator of "data", approve)
    nora   (in no team)                  root (superuser, in no team)
"""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from provisioning.models import RequestStatus, ResourceRequest
from tests.api.conftest import REQUESTS, RESOURCES, error_of, request_url, resource_url

pytestmark = pytest.mark.django_db

PENDING = RequestStatus.PENDING_APPROVAL
QUEUED = RequestStatus.QUEUED
FAILED = RequestStatus.FAILED
SUCCEEDED = RequestStatus.SUCCEEDED
CANCELLED = RequestStatus.CANCELLED


def row(user, action, owner, status, expected, code=None):
    label = f"{user} {action} {owner}'s {status} -> {expected}" + (f" {code}" if code else "")
    return pytest.param(user, action, owner, status, expected, code, id=label)


@pytest.mark.parametrize(
    ("user", "action", "owner", "status", "expected", "code"),
    [
        # reading one request
        row("requester", "detail", "requester", QUEUED, 200),
        row("teammate", "detail", "requester", QUEUED, 200),
        row("superuser", "detail", "other_operator", QUEUED, 200),
        row("requester", "detail", "other_operator", QUEUED, 404, "not_found"),
        row("loner", "detail", "requester", QUEUED, 404, "not_found"),
        # approving: needs the permission, never one's own, only one's team's
        row("operator", "approve", "requester", PENDING, 200),
        row("superuser", "approve", "requester", PENDING, 200),
        row("operator", "approve", "operator", PENDING, 403, "self_approval"),
        row("requester", "approve", "requester", PENDING, 403, "not_allowed"),
        row("teammate", "approve", "requester", PENDING, 403, "not_allowed"),
        row("other_operator", "approve", "requester", PENDING, 404, "not_found"),
        row("operator", "approve", "requester", QUEUED, 409, "invalid_transition"),
        # cancelling: any member of the team, before it runs
        row("requester", "cancel", "requester", QUEUED, 200),
        row("teammate", "cancel", "requester", QUEUED, 200),
        row("teammate", "cancel", "requester", PENDING, 200),
        row("teammate", "cancel", "requester", SUCCEEDED, 409, "invalid_transition"),
        row("teammate", "cancel", "requester", FAILED, 409, "invalid_transition"),
        row("other_operator", "cancel", "requester", QUEUED, 404, "not_found"),
        row("requester", "cancel", "other_operator", QUEUED, 404, "not_found"),
        row("loner", "cancel", "requester", QUEUED, 404, "not_found"),
        # retrying: any member of the team, once it failed, was cancelled or expired
        row("teammate", "retry", "requester", FAILED, 200),
        row("teammate", "retry", "requester", CANCELLED, 200),
        row("teammate", "retry", "requester", QUEUED, 409, "invalid_transition"),
        row("teammate", "retry", "requester", SUCCEEDED, 409, "invalid_transition"),
        row("other_operator", "retry", "requester", FAILED, 404, "not_found"),
        row("requester", "retry", "other_operator", FAILED, 404, "not_found"),
        row("loner", "retry", "requester", FAILED, 404, "not_found"),
    ],
)
def test_who_may_act_on_a_request(api_as, user_as, request_in, user, action, owner, status,
                                  expected, code):
    request = request_in(user_as(owner), status)
    client = api_as(user)

    if action == "detail":
        response = client.get(request_url(request.pk))
    else:
        response = client.post(request_url(request.pk, action))

    assert response.status_code == expected
    if code is not None:
        assert error_of(response)["code"] == code
        assert ResourceRequest.objects.get(pk=request.pk).status == status


@pytest.mark.parametrize(
    ("user", "expected", "code"),
    [
        pytest.param("requester", 202, None, id="a team member"),
        pytest.param("operator", 202, None, id="an operator of the team"),
        pytest.param("loner", 403, "no_team", id="someone in no team"),
        pytest.param("superuser", 403, "no_team", id="a superuser in no team"),
    ],
)
def test_who_may_submit(api_as, submit, user, expected, code):
    response = submit(api_as(user))

    assert response.status_code == expected
    if code is not None:
        assert error_of(response)["code"] == code
        assert ResourceRequest.objects.count() == 0


def test_submitting_for_a_team_one_is_not_in_is_refused_naming_team(requester_api, other_team,
                                                                  submit):
    response = submit(requester_api, team="data")

    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["team"]
    assert ResourceRequest.objects.count() == 0


@pytest.fixture
def requests_of_both_teams(requester, operator, other_operator, request_in):
    request_in(requester, QUEUED, name="rita-bucket")
    request_in(operator, FAILED, name="otto-bucket")
    request_in(other_operator, QUEUED, name="dana-bucket")


@pytest.mark.parametrize(
    ("user", "visible"),
    [
        pytest.param("requester", {"rita-bucket", "otto-bucket"}, id="requester sees her team's"),
        pytest.param("teammate", {"rita-bucket", "otto-bucket"}, id="teammate sees the team's"),
        pytest.param("other_operator", {"dana-bucket"}, id="another team sees only its own"),
        pytest.param("loner", set(), id="someone in no team sees nothing"),
        pytest.param("superuser", {"rita-bucket", "otto-bucket", "dana-bucket"},
                     id="superuser sees every team's"),
    ],
)
def test_the_list_shows_only_ones_teams_requests(api_as, requests_of_both_teams, user, visible):
    response = api_as(user).get(REQUESTS)

    assert response.status_code == 200
    assert sorted(item["name"] for item in response.json()["results"]) == sorted(visible)


def test_filtering_by_another_team_reveals_nothing(requester_api, requests_of_both_teams):
    response = requester_api.get(REQUESTS, {"team": "data"})

    assert response.json()["results"] == []


@pytest.mark.parametrize(
    ("user", "action", "expected"),
    [
        pytest.param("requester", "detail", 200, id="owner reads"),
        pytest.param("teammate", "delete", 202, id="teammate deletes"),
        pytest.param("superuser", "detail", 200, id="superuser reads"),
        pytest.param("other_operator", "detail", 404, id="another team reads -> 404"),
        pytest.param("other_operator", "delete", 404, id="another team deletes -> 404"),
        pytest.param("loner", "detail", 404, id="no team reads -> 404"),
        pytest.param("loner", "delete", 404, id="no team deletes -> 404"),
    ],
)
def test_who_may_act_on_a_resource(api_as, requester, resource_of, user, action, expected):
    resource = resource_of(requester, "orders")
    client = api_as(user)

    if action == "detail":
        response = client.get(resource_url(resource.pk))
    else:
        response = client.delete(resource_url(resource.pk))

    assert response.status_code == expected


def test_the_inventory_shows_only_ones_teams_resources(requester, other_operator,
                                                       resource_of, requester_api):
    resource_of(requester, "orders")
    resource_of(other_operator, "lake")

    response = requester_api.get(RESOURCES)

    assert [item["name"] for item in response.json()["results"]] == ["orders"]


ANY_ID = uuid.uuid4()


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", REQUESTS),
        ("post", REQUESTS),
        ("get", request_url(ANY_ID)),
        ("post", request_url(ANY_ID, "approve")),
        ("post", request_url(ANY_ID, "cancel")),
        ("post", request_url(ANY_ID, "retry")),
        ("get", RESOURCES),
        ("get", resource_url(ANY_ID)),
        ("delete", resource_url(ANY_ID)),
        ("get", "/api/v1/resource-types/"),
        ("get", "/api/v1/environments/"),
    ],
)
def test_every_api_endpoint_needs_credentials(anonymous_api, method, url):
    response = getattr(anonymous_api, method)(url, format="json")

    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


# The OpenAPI schema and its docs page describe the API and hold no team's data, so
# (drf-spectacular's SERVE_PERMISSIONS default, AllowAny) anyone may read them, as may the
# load balancer's health and readiness probes.
@pytest.mark.parametrize("url", ["/healthz", "/readyz", "/api/schema/", "/api/docs/"])
def test_probes_and_the_api_description_need_no_credentials(url):
    assert APIClient().get(url).status_code == 200


def test_a_deactivated_users_token_is_refused(requester, requester_api):
    requester.is_active = False
    requester.save()

    response = requester_api.get(REQUESTS)

    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"
