"""`krp approve` of a request whose deadline has passed: refused, and the request ends
expired, never queued."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import RequestStatus, ResourceRequest
from tests.cli import krp_refused
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def test_approve_past_the_deadline_is_refused_and_the_request_is_expired(requester, operator,
                                                                         monkeypatch):
    monkeypatch.delenv("KRP_USER", raising=False)
    request = submit(requester, f"cli-{uuid.uuid4().hex[:8]}", environment="prod",
                     deadline=timezone.now() + timedelta(hours=1))
    ResourceRequest.objects.filter(pk=request.pk).update(
        deadline=timezone.now() - timedelta(seconds=1))

    refused = krp_refused("approve", str(request.pk), "--user", "otto")

    assert refused.error.startswith(f"past_deadline: request {request.pk} is past its deadline")
    assert refused.error.endswith("is now expired; submit a new request")
    request.refresh_from_db()
    assert (request.status, request.queued_at) == (RequestStatus.EXPIRED, None)
    assert request.events.last().actor == "otto"
