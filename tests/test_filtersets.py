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


@pytest.mark.parametrize(("filters", "field", "known"), [
    ({"environment": "staging"}, "environment", "alpha, prod, theta, zeta"),
    ({"resource_type": "s3"}, "resource_type",
     "dynamodb_table, iam_role, s3_bucket, sns_topic, sqs_queue"),
    ({"action": "rename"}, "action", "create, update, delete, import"),
])
def test_request_list_refuses_an_unknown_value_naming_the_known_ones(three_requests, filters,
                                                                     field, known):
    with pytest.raises(InvalidRequest) as refused:
        selectors.request_list(user=None, filters=filters)

    assert refused.value.code == "invalid_filter"
    assert refused.value.fields == {
        field: [f"'{filters[field]}' is not one of the known values: {known}"]}


def test_the_known_environments_are_the_settings_ones(three_requests, container):
    from dependency_injector import providers

    settings = container.settings()
    only_prod = settings.model_copy(update={"environments": tuple(
        env for env in settings.environments if env.name == "prod")})
    with container.settings.override(providers.Object(only_prod)):
        with pytest.raises(InvalidRequest, match="known values: prod$"):
            selectors.request_list(user=None, filters={"environment": "alpha"})
