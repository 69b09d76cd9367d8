"""A resource reconcile found missing is not a dead end: a create of the same name makes it
again under the same inventory row, or an operator forgets it (POST .../forget/), which
frees its name. Nothing here reaches AWS (see tests/services/test_missing_resources.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from provisioning.models import RequestStatus, Resource, ResourceRequest, ResourceStatus
from provisioning.services.transitions import transition
from tests.api.conftest import REQUESTS, error_of, resource_url
from tests.fixtures.inventory import resource_in
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def forget_url(resource: Resource) -> str:
    return resource_url(resource.pk) + "forget/"


@pytest.fixture
def keeper(operator) -> User:
    """otto, who may also forget resources."""
    operator.user_permissions.add(Permission.objects.get(codename="forget_resource"))
    return User.objects.get(pk=operator.pk)


@pytest.fixture
def keeper_api(keeper, operator_api):
    return operator_api


def create(client, name: str, **fields):
    return client.post(REQUESTS, {"environment": "alpha", "resource_type": "s3_bucket",
                                  "name": name, "spec": {"versioning": True}, **fields},
                       format="json")


def test_a_create_of_a_missing_resource_is_accepted_and_acts_on_its_inventory_row(
    requester, requester_api
):
    missing = resource_in(requester, "ledger", status=ResourceStatus.MISSING)

    response = create(requester_api, "ledger")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["action"], body["status"], body["resource"]) == (
        "create", "queued", str(missing.pk))
    assert body["spec"]["versioning"] is True


def test_an_update_of_a_missing_resource_is_refused_naming_the_ways_out(
    requester, requester_api
):
    resource_in(requester, "ledger", status=ResourceStatus.MISSING)

    response = create(requester_api, "ledger", action="update")

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "resource_missing"
    assert error["message"] == (
        "s3_bucket alpha/ledger is missing from the cloud (reconcile found it gone); create it "
        "again (a create of the same name), delete it, or have an operator forget it")


def test_a_create_of_a_resource_that_is_there_is_still_refused(requester, requester_api):
    resource_in(requester, "ledger")

    response = create(requester_api, "ledger")

    assert response.status_code == 409
    assert error_of(response)["code"] == "already_exists"


def test_another_team_cannot_create_a_missing_resource_again(requester, other_operator_api):
    resource_in(requester, "ledger", status=ResourceStatus.MISSING)

    response = create(other_operator_api, "ledger")

    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "other_team"
    assert "an operator may forget it" in error["message"]


def test_an_operator_forgets_a_missing_resource_and_its_name_is_free_again(
    requester, requester_api, keeper_api
):
    missing = resource_in(requester, "ledger", status=ResourceStatus.MISSING)

    response = keeper_api.post(forget_url(missing))

    assert response.status_code == 200, response.json()
    assert (response.json()["id"], response.json()["status"]) == (str(missing.pk), "forgotten")
    assert response.json()["deleted_at"] is not None
    again = create(requester_api, "ledger")
    assert again.status_code == 202, again.json()
    assert again.json()["resource"] is None  # a new resource, not the forgotten one


def test_forgetting_needs_the_forget_permission(requester, operator_api):
    missing = resource_in(requester, "ledger", status=ResourceStatus.MISSING)

    response = operator_api.post(forget_url(missing))

    assert response.status_code == 403
    assert error_of(response)["code"] == "not_allowed"
    missing.refresh_from_db()
    assert missing.status == ResourceStatus.MISSING


def test_only_a_missing_resource_can_be_forgotten(requester, keeper_api):
    there = resource_in(requester, "ledger")

    response = keeper_api.post(forget_url(there))

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "not_missing"
    assert "is active; only a resource reconcile found missing" in error["message"]


def test_a_missing_resource_being_created_again_cannot_be_forgotten(requester, keeper_api):
    missing = resource_in(requester, "ledger", status=ResourceStatus.MISSING)
    submit(requester, "ledger", spec={"versioning": True})

    response = keeper_api.post(forget_url(missing))

    assert response.status_code == 409
    assert error_of(response)["code"] == "request_in_flight"


def test_another_teams_resource_is_not_found_to_forget(requester, other_operator_api):
    missing = resource_in(requester, "ledger", status=ResourceStatus.MISSING)
    other = User.objects.get(username="dana")
    other.user_permissions.add(Permission.objects.get(codename="forget_resource"))

    response = other_operator_api.post(forget_url(missing))

    assert response.status_code == 404


def test_a_cancelled_re_create_may_be_retried(requester, requester_api):
    missing = resource_in(requester, "ledger", status=ResourceStatus.MISSING)
    request = submit(requester, "ledger", spec={"versioning": True})
    transition(request.pk, from_statuses=[RequestStatus.QUEUED], to=RequestStatus.CANCELLED,
               actor="rita")

    response = requester_api.post(f"{REQUESTS}{request.pk}/retry/")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "queued"
    assert ResourceRequest.objects.get(pk=request.pk).resource_id == missing.pk
