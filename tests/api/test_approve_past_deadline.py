"""Approving a request whose deadline has passed expires it at once: it never goes to
queued, and the answer says so (409 past_deadline, as a retry past its deadline gets)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import RequestStatus, ResourceRequest
from tests.api.conftest import error_of, request_url

pytestmark = pytest.mark.django_db


def waited_past_deadline(request: ResourceRequest) -> ResourceRequest:
    """The request as it stands once its deadline has passed with nobody approving it (the
    deadline was in the future when it was submitted; the clock moved on)."""
    ResourceRequest.objects.filter(pk=request.pk).update(
        deadline=timezone.now() - timedelta(seconds=1))
    request.refresh_from_db()
    return request


def test_approving_after_the_deadline_expires_the_request_instead_of_queueing_it(
    requester, operator_api, request_in
):
    request = waited_past_deadline(request_in(
        requester, RequestStatus.PENDING_APPROVAL,
        deadline=timezone.now() + timedelta(hours=1)))

    response = operator_api.post(request_url(request.pk, "approve"))

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "past_deadline"
    assert "is now expired; submit a new request" in error["message"]
    shown = operator_api.get(request_url(request.pk)).json()
    assert shown["status"] == "expired"
    assert shown["queued_at"] is None
    assert shown["error"]["code"] == "expired"
    last = shown["events"][-1]
    assert (last["from_status"], last["to_status"], last["actor"]) == (
        "pending_approval", "expired", "otto")
    assert "approved by otto after its deadline" in last["message"]
    assert "queued" not in [event["to_status"] for event in shown["events"]]


def test_approving_before_the_deadline_queues_the_request(requester, operator_api,
                                                          request_in):
    request = request_in(requester, RequestStatus.PENDING_APPROVAL,
                         deadline=timezone.now() + timedelta(hours=1))

    response = operator_api.post(request_url(request.pk, "approve"))

    assert response.status_code == 200
    assert response.json()["status"] == "queued"
