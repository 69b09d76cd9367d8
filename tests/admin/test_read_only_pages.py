"""Records the system writes are read-only in the admin: their pages can be viewed, but
offer no Save, Delete or Add, even to a user whose permissions would allow them, and a
superuser's neither. The request page keeps its approve / cancel / retry buttons."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_results.models import TaskResult

from provisioning.models import Finding, ReconcileRun, RequestEvent
from tests.admin.conftest import succeed
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(requester):
    """One of each record a request leaves behind, all of the `platform` team."""
    request = submit(requester, "records")
    resource = succeed(request)
    run = ReconcileRun.objects.create(environment="alpha", triggered_by="beat",
                                      status="findings", checked=1)
    finding = Finding.objects.create(run=run, kind="drifted", resource=resource,
                                     resource_type="s3_bucket", arn=resource.arn)
    return {
        "provisioning_resourcerequest": request,
        "provisioning_resource": resource,
        "provisioning_requestevent": RequestEvent.objects.filter(request=request).first(),
        "provisioning_reconcilerun": run,
        "provisioning_finding": finding,
        "django_celery_results_taskresult": TaskResult.objects.get(task_id=request.task_id),
    }


ADMINS = ["provisioning_resourcerequest", "provisioning_resource", "provisioning_requestevent",
          "provisioning_reconcilerun", "provisioning_finding",
          "django_celery_results_taskresult"]


@pytest.mark.parametrize("who", ["staff_operator", "root"])
@pytest.mark.parametrize("admin_name", ADMINS)
def test_a_record_page_has_no_save_or_delete(client, request, records, admin_name, who):
    client.force_login(request.getfixturevalue(who))

    page = client.get(reverse(f"admin:{admin_name}_change", args=[records[admin_name].pk]))

    text = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in text and 'name="_continue"' not in text
    assert 'class="deletelink"' not in text


@pytest.mark.parametrize("who", ["staff_operator", "root"])
@pytest.mark.parametrize("admin_name", ADMINS)
def test_a_record_list_has_no_add_link_and_no_delete_action(client, request, records,
                                                           admin_name, who):
    client.force_login(request.getfixturevalue(who))

    page = client.get(reverse(f"admin:{admin_name}_changelist"))

    text = page.content.decode()
    assert page.status_code == 200
    # The list's own "Add" (the sidebar's are other models').
    assert f'href="{reverse(f"admin:{admin_name}_add")}"' not in text
    assert "delete_selected" not in text


@pytest.mark.parametrize("admin_name", ADMINS)
def test_a_record_cannot_be_changed_or_deleted_by_posting_anyway(client, root, records,
                                                                admin_name):
    client.force_login(root)
    record = records[admin_name]

    changed = client.post(reverse(f"admin:{admin_name}_change", args=[record.pk]), {})
    deleted = client.post(reverse(f"admin:{admin_name}_delete", args=[record.pk]),
                          {"post": "yes"})

    assert changed.status_code == 403 and deleted.status_code == 403
    assert type(record).objects.filter(pk=record.pk).exists()


def test_the_request_page_keeps_its_buttons(client, staff_operator, requester):
    waiting = submit(requester, "needs-ok", environment="prod")
    client.force_login(staff_operator)

    text = client.get(reverse("admin:provisioning_resourcerequest_change",
                              args=[waiting.pk])).content.decode()

    assert 'id="krp-approve"' in text and 'name="_save"' not in text
