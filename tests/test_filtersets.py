"""The request filterset narrows a list the way the API's query parameters do, wherever
it is used (the API, `krp status`, selectors.request_list)."""

import pytest
from django.contrib.auth.models import Group, User

from provisioning import selectors
from provisioning.errors import InvalidRequest
from provisioning.filtersets import RequestFilterSet
from provisioning.models import ResourceRequest
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_requests(requester):
    data = Group.objects.create(name="data")
    dana = User.objects.create_user("dana")
    dana.groups.add(data)
    for user, environment, name in [(requester, "alpha", "orders"), (requester, "prod", "bills"),
                                    (dana, "alpha", "events")]:
        submit(user, name, environment=environment)


def names(queryset):
    return {request.name for request in queryset}


@pytest.mark.parametrize(("filters", "expected"), [
    ({"status": "pending_approval"}, {"bills"}),
    ({"status": "queued"}, {"orders", "events"}),
    ({"environment": "alpha"}, {"orders", "events"}),
    ({"team": "data"}, {"events"}),
    ({"environment": "alpha", "team": "platform"}, {"orders"}),
    ({"environment": "", "status": None}, {"orders", "bills", "events"}),
])
def test_request_filterset_filters_by_status_environment_and_team(three_requests, filters,
                                                                  expected):
    assert names(RequestFilterSet(filters, queryset=ResourceRequest.objects.all()).qs) == expected


def test_request_list_filters_within_the_users_teams(three_requests, requester):
    assert names(selectors.request_list(user=requester, filters={"environment": "alpha"})) == {
        "orders"
    }


def test_request_list_refuses_a_status_that_does_not_exist(three_requests):
    with pytest.raises(InvalidRequest, match="status"):
        selectors.request_list(user=None, filters={"status": "sleeping"})
