"""Lists and pages show a status as a coloured badge, a request's error as its code and
first words (the whole message on hover), an ARN whole, and a failed reconcile run's
reason in its row."""

from __future__ import annotations

import pytest
from django.urls import reverse

from provisioning.models import ReconcileRun, Resource
from tests.admin.conftest import fail, succeed
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

REQUESTS = reverse("admin:provisioning_resourcerequest_changelist")
RESOURCES = reverse("admin:provisioning_resource_changelist")
RUNS = reverse("admin:provisioning_reconcilerun_changelist")

LONG_MESSAGE = ("User: arn:aws:sts::111111111111:assumed-role/krp-provisioner/krp is not "
                "authorized to perform: s3:CreateBucket on resource: arn:aws:s3:::krp-alpha-x")


def html(client, user, url, **query) -> str:
    client.force_login(user)
    page = client.get(url, query)
    assert page.status_code == 200
    return page.content.decode()


def badge(status: str, label: str) -> str:
    return f'<span class="krp-badge krp-status-{status}">{label}</span>'


def test_request_list_and_page_show_the_status_as_a_badge(client, staff_operator, requester):
    waiting = submit(requester, "needs-ok", environment="prod")
    failed = fail(submit(requester, "broken"), code="AccessDenied", message="denied")

    listing = html(client, staff_operator, REQUESTS)
    page = html(client, staff_operator,
                reverse("admin:provisioning_resourcerequest_change", args=[waiting.pk]))

    assert badge("pending_approval", "Pending Approval") in listing
    assert badge("failed", "Failed") in listing
    assert badge("pending_approval", "Pending Approval") in page
    assert failed.status == "failed"


def test_every_admin_page_loads_the_badge_stylesheet(client, staff_operator, requester):
    request = submit(requester, "styled")

    for url in (REQUESTS, RESOURCES, RUNS,
                reverse("admin:provisioning_resourcerequest_change", args=[request.pk])):
        assert "provisioning/admin.css" in html(client, staff_operator, url)


def test_request_list_shows_the_error_code_and_first_words_with_the_whole_as_title(
    client, staff_operator, requester
):
    fail(submit(requester, "broken"), code="AccessDenied", message=LONG_MESSAGE)

    listing = html(client, staff_operator, REQUESTS)

    assert 'column-error"' in listing
    assert (f'<span class="krp-error" title="{LONG_MESSAGE}"><code>AccessDenied</code> '
            f'{LONG_MESSAGE[:59]}…</span>') in listing


def test_resource_list_shows_the_whole_arn_and_a_badge_for_each_status(
    client, staff_operator, requester
):
    arn = ("arn:aws:iam::111111111111:role/krp/alpha/platform/"
           "krp-alpha-a-role-whose-name-is-what-tells-it-apart")
    resource = succeed(submit(requester, "the-role", resource_type="iam_role",
                                      spec={"trusted_service": "lambda.amazonaws.com"}), arn=arn)
    Resource.objects.filter(pk=resource.pk).update(status="missing")

    listing = html(client, staff_operator, RESOURCES)

    assert f'<span class="krp-arn">{arn}</span>' in listing
    assert badge("missing", "Missing") in listing


def test_a_failed_reconcile_runs_row_says_why(client, root):
    ReconcileRun.objects.create(environment="alpha", triggered_by="beat", status="failed",
                                error="WrongAccount: credentials resolve to 999999999999, "
                                      "not alpha's 111111111111")
    ReconcileRun.objects.create(environment="alpha", triggered_by="beat", status="clean")

    listing = html(client, root, RUNS)

    assert '<th scope="col" class="column-failure">' in listing
    assert "WrongAccount: credentials resolve to 999999999999" in listing
    assert badge("failed", "Failed") in listing and badge("clean", "Clean") in listing
