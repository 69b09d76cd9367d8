"""A request's page offers approve, cancel and retry as buttons, where its status allows
and the user may; pressing one goes through the same service as the API and the bulk
actions, and a refusal comes back as a message on the page, never an error page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from provisioning.models import RequestStatus
from tests.admin.conftest import fail
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

BUTTONS = {"approve": 'id="krp-approve"', "cancel": 'id="krp-cancel"', "retry": 'id="krp-retry"'}


def page_url(request) -> str:
    return reverse("admin:provisioning_resourcerequest_change", args=[request.pk])


def action_url(request, action: str) -> str:
    return reverse(f"admin:provisioning_resourcerequest_{action}", args=[request.pk])


def buttons_on(client, request) -> set[str]:
    page = client.get(page_url(request))
    assert page.status_code == 200
    text = page.content.decode()
    return {name for name, marker in BUTTONS.items() if marker in text}


def press(client, request, action: str):
    return client.post(action_url(request, action), follow=True)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_a_request_waiting_for_approval_offers_approve_and_cancel(client, staff_operator,
                                                                  requester):
    waiting = submit(requester, "needs-ok", environment="prod")
    client.force_login(staff_operator)

    assert buttons_on(client, waiting) == {"approve", "cancel"}


def test_a_queued_request_offers_cancel_only(client, staff_operator, requester):
    queued = submit(requester, "queued-one")
    client.force_login(staff_operator)

    assert buttons_on(client, queued) == {"cancel"}


def test_a_failed_request_offers_retry_only(client, staff_operator, requester):
    failed = fail(submit(requester, "broken"), code="AccessDenied", message="not yours")
    client.force_login(staff_operator)

    assert buttons_on(client, failed) == {"retry"}


def test_approve_is_not_offered_without_the_permission_or_on_ones_own_request(
    client, staff_operator, staff_viewer, requester
):
    theirs = submit(requester, "needs-ok", environment="prod")
    own = submit(staff_operator, "mine", environment="prod")

    client.force_login(staff_viewer)
    assert buttons_on(client, theirs) == {"cancel"}
    client.force_login(staff_operator)
    assert buttons_on(client, own) == {"cancel"}


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


def test_approving_ones_own_request_by_post_is_refused_with_a_message(client, staff_operator):
    own = submit(staff_operator, "mine", environment="prod")
    client.force_login(staff_operator)

    page = press(client, own, "approve")

    own.refresh_from_db()
    assert own.status == RequestStatus.PENDING_APPROVAL
    assert "a requester cannot approve their own request" in messages_of(page)[0]


def test_approving_without_the_permission_by_post_is_refused_with_a_message(
    client, staff_viewer, requester
):
    waiting = submit(requester, "needs-ok", environment="prod")
    client.force_login(staff_viewer)

    page = press(client, waiting, "approve")

    waiting.refresh_from_db()
    assert page.status_code == 200 and waiting.status == RequestStatus.PENDING_APPROVAL
    assert "needs the approve_resourcerequest permission" in messages_of(page)[0]


def test_another_teams_request_cannot_be_pressed(client, staff_operator, django_user_model):
    from django.contrib.auth.models import Group

    stranger = django_user_model.objects.create_user("sam")
    stranger.groups.add(Group.objects.create(name="data"))
    theirs = submit(stranger, "their-bucket")
    client.force_login(staff_operator)

    page = press(client, theirs, "cancel")

    theirs.refresh_from_db()
    assert theirs.status == RequestStatus.QUEUED
    assert page.status_code == 200 and "doesn’t exist" in messages_of(page)[0]


def test_the_buttons_answer_only_post(client, staff_operator, requester):
    waiting = submit(requester, "needs-ok", environment="prod")
    client.force_login(staff_operator)

    answer = client.get(action_url(waiting, "approve"))

    waiting.refresh_from_db()
    assert answer.status_code == 405 and waiting.status == RequestStatus.PENDING_APPROVAL


def test_a_user_without_access_to_requests_is_refused(client, requester, django_user_model):
    waiting = submit(requester, "needs-ok", environment="prod")
    outsider = django_user_model.objects.create_user("olga", is_staff=True)
    client.force_login(outsider)

    answer = client.post(action_url(waiting, "cancel"))

    waiting.refresh_from_db()
    assert answer.status_code == 403 and waiting.status == RequestStatus.PENDING_APPROVAL
