"""API fixtures: clients that authenticate as a real caller would (DRF token header), one
per kind of user, and ways to bring a request or a resource into a given state without AWS.

Teams are Django groups: "platform" (rita the requester, tess her teammate, otto the
operator who may approve) and "data" (dana, an operator of another team). Nora is in no
team; root is a superuser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.test import APIClient

from provisioning.models import RequestStatus, Resource, ResourceRequest, ResourceStatus
from provisioning.services.transitions import transition
from tests.fixtures.requests import submit as service_submit

REQUESTS = "/api/v1/requests/"
RESOURCES = "/api/v1/resources/"
# The smallest valid body; tests override what they are about.
BODY = {"environment": "alpha", "resource_type": "s3_bucket", "name": "orders",
        "spec": {"versioning": True}}


def request_url(request_id: Any, action: str | None = None) -> str:
    return f"{REQUESTS}{request_id}/" + (f"{action}/" if action else "")


def resource_url(resource_id: Any) -> str:
    return f"{RESOURCES}{resource_id}/"


def error_of(response: Response) -> dict[str, Any]:
    """The API's one error shape; fails the test if the body has another."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["message"], body
    return body["error"]


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """Throttle counts live in Django's cache; no test inherits another's."""
    cache.clear()
    yield
    cache.clear()


def _client_for(user: User) -> APIClient:
    """A client that sends the user's own DRF token, as a pipeline or CLI would."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _with_approve_permission(user: User) -> User:
    user.user_permissions.add(Permission.objects.get(codename="approve_resourcerequest"))
    return User.objects.get(pk=user.pk)  # fresh: permissions are cached per instance


@pytest.fixture
def other_team(db) -> Group:
    return Group.objects.create(name="data")


@pytest.fixture
def teammate(team) -> User:
    user = User.objects.create_user("tess")
    user.groups.add(team)
    return user


@pytest.fixture
def other_operator(other_team) -> User:
    user = User.objects.create_user("dana")
    user.groups.add(other_team)
    return _with_approve_permission(user)


@pytest.fixture
def loner(db) -> User:
    return User.objects.create_user("nora")


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root", password=None)


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()


@pytest.fixture
def requester_api(requester) -> APIClient:
    return _client_for(requester)


@pytest.fixture
def teammate_api(teammate) -> APIClient:
    return _client_for(teammate)


@pytest.fixture
def operator_api(operator) -> APIClient:
    return _client_for(operator)


@pytest.fixture
def other_operator_api(other_operator) -> APIClient:
    return _client_for(other_operator)


@pytest.fixture
def loner_api(loner) -> APIClient:
    return _client_for(loner)


@pytest.fixture
def superuser_api(superuser) -> APIClient:
    return _client_for(superuser)


@pytest.fixture
def api_as(request) -> Callable[[str], APIClient]:
    """The client of a user named by role ("requester", ..., "anonymous")."""

    def client(role: str) -> APIClient:
        return request.getfixturevalue(f"{role}_api")

    return client


@pytest.fixture
def user_as(request) -> Callable[[str], User]:
    """The user of a role, as in api_as (not "anonymous")."""

    def user(role: str) -> User:
        return request.getfixturevalue(role)

    return user


@pytest.fixture
def submit() -> Callable[..., Response]:
    """POST a request through the API: submit(client, name="x", headers={...})."""

    def post(client: APIClient, *, headers: dict[str, str] | None = None,
             **fields: Any) -> Response:
        return client.post(REQUESTS, {**BODY, **fields}, format="json", headers=headers)

    return post


# How a request submitted to alpha (queued at once) reaches each status, as the worker and
# the sweep would move it: the services' own transition, never AWS.
_PATHS = {
    RequestStatus.QUEUED: [],
    RequestStatus.RUNNING: [RequestStatus.RUNNING],
    RequestStatus.SUCCEEDED: [RequestStatus.RUNNING, RequestStatus.SUCCEEDED],
    RequestStatus.FAILED: [RequestStatus.RUNNING, RequestStatus.FAILED],
    RequestStatus.CANCELLED: [RequestStatus.CANCELLED],
    RequestStatus.EXPIRED: [RequestStatus.EXPIRED],
}
_FIELDS = {
    RequestStatus.QUEUED: lambda: {"queued_at": timezone.now()},  # approved
    RequestStatus.RUNNING: lambda: {"started_at": timezone.now(), "attempts": 1},
    RequestStatus.SUCCEEDED: lambda: {
        "finished_at": timezone.now(),
        "outputs": {"arn": "arn:aws:s3:::krp-alpha-orders", "bucket": "krp-alpha-orders"},
    },
    RequestStatus.FAILED: lambda: {
        "finished_at": timezone.now(), "error_code": "permanent_cloud_error",
        "error_message": "AccessDenied: not allowed to create the bucket",
    },
    RequestStatus.CANCELLED: lambda: {"finished_at": timezone.now()},
    RequestStatus.EXPIRED: lambda: {"finished_at": timezone.now()},
}


def move(request: ResourceRequest, *statuses: str) -> ResourceRequest:
    for status in statuses:
        request = transition(
            request.pk, from_statuses=[request.status], to=status, actor="worker@test",
            message=f"test: {status}", **_FIELDS[status](),
        )
    return request


@pytest.fixture
def request_in() -> Callable[..., ResourceRequest]:
    """A request of `user`'s in `status`; pending_approval ones are for prod, others for
    alpha unless `environment` says (a prod one is approved on its way).

    request_in(user, "failed", name="orders", resource_type="s3_bucket")
    """

    def make(user: User, status: str = RequestStatus.QUEUED, *, name: str = "orders",
             resource_type: str = "s3_bucket", environment: str | None = None,
             **fields: Any) -> ResourceRequest:
        if environment is None:
            environment = "prod" if status == RequestStatus.PENDING_APPROVAL else "alpha"
        request = service_submit(user, name, environment=environment,
                                 resource_type=resource_type, **fields)
        if status != RequestStatus.PENDING_APPROVAL:
            if request.status == RequestStatus.PENDING_APPROVAL:
                request = move(request, RequestStatus.QUEUED)
            request = move(request, *_PATHS[RequestStatus(status)])
        return request

    return make


@pytest.fixture
def resource_of(request_in) -> Callable[..., Resource]:
    """A live resource in the inventory, made by a real (succeeded) create request."""

    def make(user: User, name: str = "orders", *, resource_type: str = "s3_bucket",
             environment: str = "alpha", status: str = ResourceStatus.ACTIVE,
             spec: dict[str, Any] | None = None) -> Resource:
        created_by = request_in(user, RequestStatus.SUCCEEDED, name=name,
                                resource_type=resource_type, environment=environment,
                                spec=spec)
        physical = created_by.physical_name
        resource = Resource.objects.create(
            environment=environment, resource_type=resource_type, name=name,
            physical_name=physical, physical_id=physical,
            arn=f"arn:aws:{resource_type}:::{physical}", spec=created_by.spec,
            tags=created_by.tags, outputs={"physical_name": physical}, status=status,
            team=created_by.team, created_by_request=created_by,
            last_verified_at=timezone.now(),
        )
        ResourceRequest.objects.filter(pk=created_by.pk).update(resource=resource)
        return resource

    return make
