"""Operators in the admin: find requests, read their story, approve / cancel / retry."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from provisioning.models import RequestStatus, ResourceRequest
from provisioning.services.transitions import transition
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:provisioning_resourcerequest_changelist")


def run_action(client, action, *requests):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [str(r.pk) for r in requests]},
        follow=True,
    )


def test_changelist_filters_by_status_and_environment(client, staff_operator, requester):
    submit(requester, "queued-one")
    submit(requester, "waiting-one", environment="prod")
    client.force_login(staff_operator)

    page = client.get(CHANGELIST, {"status__exact": "pending_approval"})

    assert page.status_code == 200
    assert b"waiting-one" in page.content and b"queued-one" not in page.content


@pytest.mark.parametrize("field", ["id", "task_id", "name"])
def test_search_finds_a_request_by_id_task_id_or_name(client, staff_operator, requester, field):
    wanted = submit(requester, "wanted-bucket")
    submit(requester, "other-bucket")
    client.force_login(staff_operator)

    page = client.get(CHANGELIST, {"q": str(getattr(wanted, field))})

    assert b"wanted-bucket" in page.content and b"other-bucket" not in page.content


def test_search_finds_a_request_by_the_arn_it_produced(client, staff_operator, requester):
    done = submit(requester, "arn-bucket")
    ResourceRequest.objects.filter(pk=done.pk).update(outputs={"arn": "arn:aws:s3:::krp-x"})
    client.force_login(staff_operator)

    page = client.get(CHANGELIST, {"q": "arn:aws:s3:::krp-x"})

    assert b"arn-bucket" in page.content


def test_request_page_shows_its_events_outputs_and_error(client, staff_operator, requester):
    request = submit(requester, "story")
    transition(request.pk, from_statuses=["queued"], to="running", actor="worker")
    transition(request.pk, from_statuses=["running"], to="failed", actor="worker",
               message="AccessDenied: not yours", error_code="AccessDenied",
               error_message="not yours")
    client.force_login(staff_operator)

    page = client.get(reverse("admin:provisioning_resourcerequest_change", args=[request.pk]))

    text = page.content.decode()
    assert "AccessDenied: not yours" in text
    assert "not yours" in text and "not run yet" in text
    assert text.count("worker") >= 2


def test_operator_approves_from_the_admin_through_the_same_service(
    client, staff_operator, requester
):
    waiting = submit(requester, "needs-ok", environment="prod")
    client.force_login(staff_operator)

    page = run_action(client, "approve_selected", waiting)

    waiting.refresh_from_db()
    assert waiting.status == RequestStatus.QUEUED
    assert "1 request(s) approved." in page.content.decode()
    event = waiting.events.last()
    assert (event.to_status, event.actor, event.message) == ("queued", "otto", "approved")


def test_approve_action_is_not_offered_without_the_permission(client, staff_viewer, requester):
    submit(requester, "needs-ok", environment="prod")
    client.force_login(staff_viewer)

    page = client.get(CHANGELIST)

    assert b"approve_selected" not in page.content
    assert b"cancel_selected" in page.content


def test_own_request_cannot_be_approved_in_the_admin_either(client, staff_operator):
    own = submit(staff_operator, "mine", environment="prod")
    client.force_login(staff_operator)

    page = run_action(client, "approve_selected", own)

    own.refresh_from_db()
    assert own.status == RequestStatus.PENDING_APPROVAL
    assert "a requester cannot approve their own request" in page.content.decode()


def test_cancel_and_retry_from_the_admin(client, staff_operator, requester):
    request = submit(requester, "back-and-forth")
    client.force_login(staff_operator)

    run_action(client, "cancel_selected", request)
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    run_action(client, "retry_selected", request)
    request.refresh_from_db()
    assert request.status == RequestStatus.QUEUED


def test_status_and_outputs_cannot_be_edited_by_hand(client, staff_operator, requester):
    request = submit(requester, "read-only")
    client.force_login(staff_operator)
    url = reverse("admin:provisioning_resourcerequest_change", args=[request.pk])

    client.post(url, {"status": "succeeded", "outputs": '{"arn": "forged"}',
                      "task_id": "forged", "events-TOTAL_FORMS": "0",
                      "events-INITIAL_FORMS": "0"})

    request.refresh_from_db()
    assert request.status == RequestStatus.QUEUED
    assert request.outputs == {} and request.task_id != "forged"


def test_other_teams_requests_are_not_listed_for_staff(client, staff_viewer, django_user_model):
    from django.contrib.auth.models import Group

    stranger = django_user_model.objects.create_user("sam")
    stranger.groups.add(Group.objects.create(name="data"))
    submit(stranger, "their-bucket")
    client.force_login(staff_viewer)

    page = client.get(CHANGELIST)

    assert b"their-bucket" not in page.content


def test_changelist_query_count_does_not_grow_with_the_rows(client, staff_operator, requester):
    client.force_login(staff_operator)
    for index in range(3):
        submit(requester, f"few-{index}")
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    for index in range(40):
        submit(requester, f"many-{index}")
    with CaptureQueriesContext(connection) as many:
        client.get(CHANGELIST)

    assert len(many) == len(few)


def test_reconcile_findings_show_in_the_admin(client, django_user_model, requester):
    from provisioning.models import Finding, ReconcileRun

    run = ReconcileRun.objects.create(environment="alpha", triggered_by="beat",
                                      status="findings", checked=3)
    Finding.objects.create(run=run, kind="orphan", resource_type="s3_bucket",
                           arn="arn:aws:s3:::krp-alpha-stray", details={"tags": {}})
    admin_user = django_user_model.objects.create_superuser("root", "r@x.y", "pw")
    client.force_login(admin_user)

    listing = client.get(reverse("admin:provisioning_reconcilerun_changelist"))
    page = client.get(reverse("admin:provisioning_reconcilerun_change", args=[run.pk]))
    findings = client.get(reverse("admin:provisioning_finding_changelist"), {"kind": "orphan"})

    assert listing.status_code == 200 and b"findings" in listing.content
    assert b"arn:aws:s3:::krp-alpha-stray" in page.content
    assert b"arn:aws:s3:::krp-alpha-stray" in findings.content
