"""What expires soon, through the API: `?expires_before=` on the resource and stack lists."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import Resource, Stack
from tests.api.conftest import RESOURCES, error_of
from tests.fixtures.inventory import resource_in
from tests.fixtures.stacks import drive, stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

STACKS = "/api/v1/stacks/"


def expiring_in(resource: Resource, left: timedelta) -> None:
    Resource.objects.filter(pk=resource.pk).update(expires_at=timezone.now() + left)


def names(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return sorted(row["name"] for row in response.json()["results"])


def test_resources_expiring_before_a_time_are_listed_with_those_already_expired(
        requester_api, requester):
    expiring_in(resource_in(requester, "soon"), timedelta(days=2))
    expiring_in(resource_in(requester, "past"), -timedelta(hours=1))
    expiring_in(resource_in(requester, "later"), timedelta(days=9))
    resource_in(requester, "forever")
    week = (timezone.now() + timedelta(days=7)).isoformat()

    assert names(requester_api.get(RESOURCES, {"expires_before": week})) == ["past", "soon"]


def test_stacks_expiring_before_a_time_are_listed(requester_api):
    made = {}
    for stem, left in (("soon", timedelta(days=1)), ("later", timedelta(days=6))):
        response = requester_api.post(STACKS, {
            "environment": "zeta", "name": stack_name(stem), "ttl": "7d",
            "members": {"logs": {"resource_type": "s3_bucket", "spec": {}}}}, format="json")
        assert response.status_code == 202, response.json()
        stack = drive(Stack.objects.get(pk=response.json()["id"]))
        Stack.objects.filter(pk=stack.pk).update(expires_at=timezone.now() + left)
        made[stem] = stack.name
    three_days = (timezone.now() + timedelta(days=3)).isoformat()

    assert names(requester_api.get(STACKS, {"expires_before": three_days})) == [made["soon"]]


def test_a_time_that_is_not_one_answers_400_naming_the_filter(requester_api):
    response = requester_api.get(RESOURCES, {"expires_before": "next week"})

    assert response.status_code == 400
    assert error_of(response)["fields"]["expires_before"] == [
        "give an ISO 8601 time, e.g. 2026-12-01T09:00:00Z"]
