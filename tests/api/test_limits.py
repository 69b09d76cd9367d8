"""Limits on one client: requests per user (and per anonymous address) and body size.

The limits come from KrpSettings through the container, so a test changes them as an
operator would, with KRP_* variables, and hands the container the resulting settings.
"""

from __future__ import annotations

import json
import os

import pytest
from dependency_injector import providers

from containers.settings import KrpSettings
from provisioning.models import ResourceRequest
from tests.api.conftest import BODY, REQUESTS, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def configure(container):
    """configure(KRP_API_USER_RATE="3/min"): the container's settings, with those variables."""

    def override(**variables: str) -> KrpSettings:
        changed = KrpSettings.from_environ({**os.environ, **variables})
        container.settings.override(providers.Object(changed))
        return changed

    return override


def test_beyond_the_user_rate_is_429_with_retry_after(configure, requester_api):
    configure(KRP_API_USER_RATE="3/min")
    for _ in range(3):
        assert requester_api.get(REQUESTS).status_code == 200

    response = requester_api.get(REQUESTS)

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    error = error_of(response)
    assert error["code"] == "throttled"
    assert "seconds" in error["message"]


def test_the_rate_is_counted_per_user(configure, requester_api, teammate_api):
    configure(KRP_API_USER_RATE="3/min")
    for _ in range(4):
        requester_api.get(REQUESTS)

    assert teammate_api.get(REQUESTS).status_code == 200


def test_a_throttled_submit_records_nothing(configure, requester_api, submit):
    configure(KRP_API_USER_RATE="3/min")
    for name in ("one", "two", "three"):
        assert submit(requester_api, name=name).status_code == 202

    response = submit(requester_api, name="four")

    assert response.status_code == 429
    assert ResourceRequest.objects.count() == 3


def test_anonymous_callers_have_their_own_rate(configure, anonymous_api):
    configure(KRP_API_ANON_RATE="2/min")
    for _ in range(2):
        assert anonymous_api.get("/api/schema/").status_code == 200

    response = anonymous_api.get("/api/schema/")

    assert response.status_code == 429
    assert response["Retry-After"]


@pytest.mark.parametrize("probe", ["/healthz", "/readyz"])
def test_health_probes_are_never_throttled(configure, anonymous_api, probe):
    configure(KRP_API_ANON_RATE="2/min")

    answers = [anonymous_api.get(probe).status_code for _ in range(5)]

    assert answers == [200] * 5


def test_the_configured_body_limit_is_the_one_enforced(configure, requester_api):
    configure(KRP_API_MAX_BODY_BYTES="1024")
    body = json.dumps({**BODY, "tags": {f"note-{n}": "x" * 200 for n in range(8)}})
    assert 1024 < len(body) < 65536  # accepted under the default limit

    response = requester_api.post(REQUESTS, body, content_type="application/json")

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "body_too_large"
    assert "1024 bytes" in error["message"]
    assert ResourceRequest.objects.count() == 0
