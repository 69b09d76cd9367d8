"""A request's page offers approve, cancel and retry as buttons, where its status allows
and the user may; pressing one goes through the same service as the API and the bulk
actions, and a refusal comes back as a message on the page, never an error page. What
the buttons do alike on a request's and a stack's page is in test_operator_buttons.py."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from provisioning.models import RequestStatus
from tests.admin.conftest import action_url, buttons_on, fail, messages_of, press
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def page_url(request) -> str:
    return reverse("admin:provisioning_resourcerequest_change", args=[request.pk])


def test_a_queued_request_offers_cancel_only(client, staff_operator, requester):
    queued = submit(requester, "queued-one")
    client.force_login(staff_operator)

    assert buttons_on(client, queued) == {"cancel"}


def test_a_failed_request_offers_retry_only(client, staff_operator, requester):
    failed = fail(submit(requester, "broken"), code="AccessDenied", message="not yours")
    client.force_login(staff_operator)

    assert buttons_on(client, failed) == {"retry"}


def test_the_approve_button_is_a_post_form_with_the_csrf_token(client, staff_operator,
                                                              requester):
    waiting = submit(requester, "needs-ok", environment="prod")
    client.force_login(staff_operator)

    text = client.get(page_url(waiting)).content.decode()

    form = re.search(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', text, re.S)
    assert form is not None and form.group(1) == action_url(waiting, "approve")
    assert 'name="csrfmiddlewaretoken"' in form.group(2)
    assert '<button type="submit"' in form.group(2) and 'id="krp-approve"' in form.group(2)


def test_pressing_approve_queues_the_request_and_says_so(client, staff_operator, requester):
    waiting = submit(requester, "needs-ok", environment="prod")
    client.force_login(staff_operator)

    page = press(client, waiting, "approve")

    waiting.refresh_from_db()
    assert waiting.status == RequestStatus.QUEUED
    assert page.status_code == 200 and page.request["PATH_INFO"] == page_url(waiting)
    assert messages_of(page) == [f"Request {str(waiting.pk)[:8]} approved; it is now Queued."]
    event = waiting.events.last()
    assert (event.to_status, event.actor, event.message) == ("queued", "otto", "approved")
    assert 'krp-status-queued' in page.content.decode()


def test_pressing_cancel_then_retry(client, staff_operator, requester):
    request = submit(requester, "back-and-forth")
    client.force_login(staff_operator)

    cancelled = press(client, request, "cancel")
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    assert "it is now Cancelled." in messages_of(cancelled)[0]

    retried = press(client, request, "retry")
    request.refresh_from_db()
    assert request.status == RequestStatus.QUEUED
    assert "it is now Queued." in messages_of(retried)[0]


def test_retry_in_an_approval_environment_says_it_waits_for_approval(client, staff_operator,
                                                                     requester):
    request = submit(requester, "prod-one", environment="prod")
    client.force_login(staff_operator)
    press(client, request, "cancel")

    page = press(client, request, "retry")

    assert messages_of(page) == [
        f"Request {str(request.pk)[:8]} retried; it is now Pending Approval."]


def test_a_refused_press_shows_the_services_reason_and_changes_nothing(client, staff_operator,
                                                                      requester):
    queued = submit(requester, "already-queued")
    client.force_login(staff_operator)

    page = press(client, queued, "approve")

    queued.refresh_from_db()
    assert page.status_code == 200 and queued.status == RequestStatus.QUEUED
    assert messages_of(page) == [
        f"Request {str(queued.pk)[:8]} was not approved: request {queued.pk} is queued; "
        "cannot approve it (allowed only when pending_approval)"]





def test_a_user_without_access_to_requests_is_refused(client, requester, django_user_model):
    waiting = submit(requester, "needs-ok", environment="prod")
    outsider = django_user_model.objects.create_user("olga", is_staff=True)
    client.force_login(outsider)

    answer = client.post(action_url(waiting, "cancel"))

    waiting.refresh_from_db()
    assert answer.status_code == 403 and waiting.status == RequestStatus.PENDING_APPROVAL
