"""The API keeps the promises of its own OpenAPI schema (/api/schema/).

Schemathesis generates requests for every operation from the schema and sends them to the
WSGI app in-process, authenticated with a team member's token. Every answer must be one
the schema documents: no 5xx, a documented status code, content type and headers, a body
of the documented shape. A second pass aims every example at what exists (a real request
or resource id, a valid new request), so the answers of success are checked too, not only
the refusals of random input.

Nothing here reaches AWS: the API never calls it, and the test's transaction never
commits, so not even a job message is published.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from krp_project.wsgi import application

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
NAMES = itertools.count()

# One transaction per test, rolled back: nothing commits, so nothing is ever published.
pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@dataclass
class Member:
    token: str
    request_ids: list[str]
    resource_id: str


@pytest.fixture(autouse=True)
def connection_kept_across_requests():
    """Keep the test's database connection (and its open transaction) between requests.

    The WSGI handler closes "old" connections when a request starts and finishes, and one
    inside a transaction counts as old. Django's own test client disconnects it likewise.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def member(operator, requester, team) -> Member:
    """An operator of the platform team, with a token. The team has a request in each state
    that approve, cancel and retry act on (the one waiting for approval is a teammate's),
    and a live resource."""
    from rest_framework.authtoken.models import Token

    from provisioning.models import RequestStatus, Resource, ResourceRequest
    from tests.fixtures.requests import submit

    def submitted(name, *, by=operator, environment="alpha", status=None):
        request = submit(by, name, environment=environment)
        if status:
            ResourceRequest.objects.filter(pk=request.pk).update(status=status)
        return request

    queued = submitted("schema-queued")
    waiting = submitted("schema-waiting", by=requester, environment="prod")
    failed = submitted("schema-failed", status=RequestStatus.FAILED)
    made = submitted("schema-live", status=RequestStatus.SUCCEEDED)
    resource = Resource.objects.create(
        environment="alpha", resource_type="s3_bucket", name="schema-live",
        physical_name=made.physical_name, arn=f"arn:aws:s3:::{made.physical_name}",
        team=team, created_by_request=made,
    )
    return Member(
        token=Token.objects.create(user=operator).key,
        request_ids=[str(r.pk) for r in (queued, waiting, failed, made)],
        resource_id=str(resource.pk),
    )


def aim_at_what_exists(case, member: Member, pick: int) -> None:
    """Point the case at a real request or resource, or give it a valid new request."""
    if "id" in case.path_parameters:
        on_resource = case.operation.path.startswith("/api/v1/resources/")
        case.path_parameters["id"] = (
            member.resource_id if on_resource
            else member.request_ids[pick % len(member.request_ids)]
        )
    elif case.method.upper() == "POST" and case.operation.path == "/api/v1/requests/":
        case.body = {"environment": "alpha", "resource_type": "s3_bucket",
                     "name": f"schema-{next(NAMES)}", "spec": {"versioning": pick % 2 == 0}}


SETTINGS = settings(
    max_examples=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@schema.parametrize()
@SETTINGS
def test_every_answer_to_generated_input_is_one_the_schema_documents(case, member):
    call_and_validate(case, member)


# The schema's own examples (a new request of each type) are sent by the test above:
# schemathesis will not combine them with @schema.given's extra arguments.
WITHOUT_EXAMPLES = settings(SETTINGS, phases=[phase for phase in SETTINGS.phases
                                              if phase != Phase.explicit])


@schema.parametrize()
@schema.given(pick=st.integers(min_value=0, max_value=3))
@WITHOUT_EXAMPLES
def test_every_answer_about_what_exists_is_one_the_schema_documents(case, pick, member):
    aim_at_what_exists(case, member, pick)
    call_and_validate(case, member)


def call_and_validate(case, member: Member) -> None:
    cache.clear()  # throttling has its own tests; here every example starts a fresh window
    case.call_and_validate(headers={"Authorization": f"Token {member.token}"}, checks=CHECKS)
