"""/api/v1/resources/: the inventory of a team's resources, and deleting one through it.

Resources are put in the inventory as a finished create request leaves them (see the
resource_of fixture); deleting answers with the delete request it recorded, never AWS.
"""

from __future__ import annotations

import pytest

from provisioning.models import RequestAction, ResourceRequest, ResourceStatus
from tests.api.conftest import RESOURCES, error_of, request_url, resource_url

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    return [item["name"] for item in response.json()["results"]]


def test_list_shows_the_teams_resources_with_their_cloud_identity(requester, requester_api,
                                                                  resource_of):
    resource = resource_of(requester, "orders")

    response = requester_api.get(RESOURCES)

    assert response.status_code == 200
    assert (len(response.json()["results"]), response.json()["next"]) == (1, None)
    item = response.json()["results"][0]
    assert item["id"] == str(resource.pk)
    assert {key: item[key] for key in ("environment", "resource_type", "name", "status",
                                       "team", "physical_name", "arn")} == {
        "environment": "alpha", "resource_type": "s3_bucket", "name": "orders",
        "status": "active", "team": "platform", "physical_name": "krp-alpha-orders",
        "arn": "arn:aws:s3_bucket:::krp-alpha-orders",
    }
    assert item["created_by_request"] == str(resource.created_by_request_id)


def test_list_is_ordered_by_environment_type_and_name(requester, requester_api, resource_of):
    resource_of(requester, "zebra")
    resource_of(requester, "apple")
    resource_of(requester, "queue", resource_type="sqs_queue")

    assert names(requester_api.get(RESOURCES)) == ["apple", "zebra", "queue"]


@pytest.fixture
def inventory(requester, other_operator, resource_of):
    resource_of(requester, "orders")
    resource_of(requester, "jobs", resource_type="sqs_queue")
    resource_of(requester, "gone", status=ResourceStatus.DELETED)
    resource_of(other_operator, "lake")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({"resource_type": "sqs_queue"}, {"jobs"}, id="resource_type"),
        pytest.param({"status": "deleted"}, {"gone"}, id="status"),
        pytest.param({"team": "data"}, {"lake"}, id="team"),
        pytest.param({"name": "orders"}, {"orders"}, id="name"),
        pytest.param({"environment": "alpha"}, {"orders", "jobs", "gone", "lake"},
                     id="environment"),
        pytest.param({"environment": "prod"}, set(), id="nothing matches"),
    ],
)
def test_list_filters_narrow_what_is_shown(superuser_api, inventory, query, expected):
    response = superuser_api.get(RESOURCES, query)

    assert response.status_code == 200
    assert set(names(response)) == expected


def test_list_filter_with_an_unknown_status_is_400_naming_it(requester_api):
    response = requester_api.get(RESOURCES, {"status": "exploded"})

    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["status"]


def test_detail_shows_one_resource(requester, requester_api, resource_of):
    resource = resource_of(requester, "orders")

    response = requester_api.get(resource_url(resource.pk))

    assert response.status_code == 200
    assert response.json()["id"] == str(resource.pk)
    assert response.json()["outputs"] == {"physical_name": "krp-alpha-orders"}


def test_detail_of_another_teams_resource_is_404(other_operator, requester_api, resource_of):
    resource = resource_of(other_operator, "lake")

    response = requester_api.get(resource_url(resource.pk))

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_delete_answers_202_with_the_delete_request_it_recorded(requester, requester_api,
                                                                resource_of):
    resource = resource_of(requester, "orders")

    response = requester_api.delete(resource_url(resource.pk))

    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == request_url(body["id"])
    assert (body["action"], body["status"], body["name"], body["resource"]) == (
        "delete", "queued", "orders", str(resource.pk),
    )
    recorded = ResourceRequest.objects.get(pk=body["id"])
    assert (recorded.action, recorded.resource_id) == (RequestAction.DELETE, resource.pk)


def test_delete_in_an_environment_needing_approval_waits_for_it(requester, requester_api,
                                                                resource_of):
    resource = resource_of(requester, "ledger", environment="prod")

    response = requester_api.delete(resource_url(resource.pk))

    assert response.status_code == 202
    assert response.json()["status"] == "pending_approval"


def test_delete_by_a_teammate_is_accepted(requester, teammate_api, resource_of):
    resource = resource_of(requester, "orders")

    response = teammate_api.delete(resource_url(resource.pk))

    assert response.status_code == 202
    assert response.json()["requested_by"] == "tess"


def test_delete_of_another_teams_resource_is_404_and_records_nothing(
    other_operator, requester_api, resource_of,
):
    resource = resource_of(other_operator, "lake")
    before = ResourceRequest.objects.count()

    response = requester_api.delete(resource_url(resource.pk))

    assert response.status_code == 404
    assert ResourceRequest.objects.count() == before


def test_delete_twice_is_409_while_the_first_is_in_flight(requester, requester_api,
                                                         resource_of):
    resource = resource_of(requester, "orders")
    first = requester_api.delete(resource_url(resource.pk))

    second = requester_api.delete(resource_url(resource.pk))

    assert second.status_code == 409
    error = error_of(second)
    assert error["code"] == "request_in_flight"
    assert first.json()["id"] in error["message"]


def test_delete_twice_with_the_same_idempotency_key_returns_the_first(requester, requester_api,
                                                                      resource_of):
    resource = resource_of(requester, "orders")
    key = {"Idempotency-Key": "cleanup-7"}
    first = requester_api.delete(resource_url(resource.pk), headers=key)

    replay = requester_api.delete(resource_url(resource.pk), headers=key)

    assert (first.status_code, replay.status_code) == (202, 200)
    assert replay.json()["id"] == first.json()["id"]
