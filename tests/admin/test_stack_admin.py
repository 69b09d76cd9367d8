"""A stack in the admin: the list with each stack's status, members and error; its page,
read-only, with its members in dependency order (status, what each depends on, links to
the requests that made and deleted it and to its resource) and its events; and the
approve / cancel / retry / delete buttons, which go through the stack services as the API
does, a refusal shown as a message (what they do alike on a request's page is in
test_operator_buttons.py). A member's request links back to its stack."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from provisioning.admin.display import change_url
from provisioning.models import RequestStatus, Stack, StackStatus
from provisioning.services import stack_delete, stack_submit
from tests.admin.conftest import buttons_on, messages_of, press
from tests.fixtures.stacks import drive, queue_topic_role, stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

def page_url(stack: Stack) -> str:
    return reverse("admin:provisioning_stack_change", args=[stack.pk])


def page_of(client, stack: Stack) -> str:
    page = client.get(page_url(stack))
    assert page.status_code == 200
    return page.content.decode()


def member_rows(text: str) -> dict[str, str]:
    """Member key -> its row's HTML, in the order the members inline shows them."""
    section = text.split('id="members-group"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr class="form-row[^"]*"[^>]*>(.*?)</tr>', section, re.S)
    return {cell(row, "key"): row for row in rows}


def cell(row: str, field: str) -> str:
    """The text of a member row's cell (a read-only field is a paragraph)."""
    found = re.search(rf'<td class="field-{field}">\s*<p>(.*?)</p>', row, re.S)
    return found.group(1).strip()


def broken(name: str, **extra) -> dict:
    """A stack whose role refers to a managed policy IAM does not have: that member fails
    for good."""
    document = queue_topic_role(name, **extra)
    document["members"]["reader"]["spec"]["managed_policy_arns"] = [
        "arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"]
    return document


@pytest.fixture
def built(requester) -> Stack:
    """A stack of four members, every one created in the sandbox."""
    stack = drive(stack_submit(user=requester, document=queue_topic_role(
        stack_name("orders")))[0])
    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    return stack


@pytest.fixture
def waiting(requester) -> Stack:
    """A stack in prod, which requires approval: nothing of it recorded yet."""
    stack, _ = stack_submit(user=requester, document=queue_topic_role(
        stack_name("prod"), environment="prod"))
    assert stack.status == StackStatus.PENDING_APPROVAL
    return stack


def test_the_list_shows_each_stack_with_its_status_members_and_error(
    client, staff_operator, requester, built, waiting
):
    failed = drive(stack_submit(user=requester, document=broken(stack_name("broken")))[0])
    client.force_login(staff_operator)

    text = client.get(reverse("admin:provisioning_stack_changelist")).content.decode()

    rows = {name: row for name, row in re.findall(
        r'<tr>.*?<th class="field-stack"><a [^>]*>([^<]+)</a></th>(.*?)</tr>', text, re.S)}
    assert set(rows) >= {f"alpha/{built.name}", f"prod/{waiting.name}", f"alpha/{failed.name}"}
    assert "krp-status-succeeded" in rows[f"alpha/{built.name}"]
    assert "krp-status-pending_approval" in rows[f"prod/{waiting.name}"]
    assert '<td class="field-member_count">4</td>' in rows[f"alpha/{built.name}"]
    assert "krp-status-rolled_back" in rows[f"alpha/{failed.name}"]
    assert "<code>member_failed</code> member reader failed" in rows[f"alpha/{failed.name}"]
    assert 'field-requested_by nowrap">rita</td>' in rows[f"alpha/{built.name}"]


def test_the_list_filters_by_status_and_environment(client, staff_operator, built, waiting):
    client.force_login(staff_operator)
    url = reverse("admin:provisioning_stack_changelist")

    by_status = client.get(url, {"status__exact": "pending_approval"}).content.decode()
    by_environment = client.get(url, {"environment": "alpha"}).content.decode()

    assert f"prod/{waiting.name}" in by_status and f"alpha/{built.name}" not in by_status
    assert f"alpha/{built.name}" in by_environment and waiting.name not in by_environment


def test_a_stacks_page_shows_its_members_in_dependency_order_with_their_links(
    client, staff_operator, built
):
    client.force_login(staff_operator)

    text = page_of(client, built)

    rows = member_rows(text)
    order = list(rows)
    assert set(order) == {"jobs", "events", "reader", "audit"}
    assert order.index("jobs") < order.index("events")
    assert order.index("jobs") < order.index("reader")
    jobs = built.members.select_related("request__resource").get(key="jobs")
    assert "krp-status-succeeded" in rows["jobs"]
    assert f'href="{change_url(jobs.request)}"' in rows["jobs"]
    assert f'href="{change_url(jobs.request.resource)}"' in rows["jobs"]
    assert cell(rows["events"], "depends") == "jobs"
    assert cell(rows["audit"], "depends") == "-"
    # The document as submitted, and the stack's story.
    assert "&quot;jobs.name&quot;" in text
    assert "submitted with 4 members" in text and "all 4 members created" in text


def test_a_deleted_stacks_members_show_deleted_with_their_delete_requests(
    client, staff_operator, requester, built
):
    gone = drive(stack_delete(stack_id=built.pk, user=requester))
    assert gone.status == StackStatus.DELETED
    client.force_login(staff_operator)

    rows = member_rows(page_of(client, gone))

    audit = gone.members.select_related("delete_request").get(key="audit")
    assert all('krp-status-deleted">Deleted<' in row for row in rows.values())
    assert f'href="{change_url(audit.delete_request)}"' in rows["audit"]


def test_a_waiting_stacks_members_show_waiting_without_requests(client, staff_operator,
                                                               waiting):
    client.force_login(staff_operator)

    rows = member_rows(page_of(client, waiting))

    assert all('krp-status-waiting">Waiting<' in row for row in rows.values())
    assert {cell(row, "create_request") for row in rows.values()} == {"-"}


def test_a_failed_member_shows_its_error_and_the_rolled_back_ones_deleted(
    client, staff_operator, requester
):
    failed = drive(stack_submit(user=requester, document=broken(stack_name("broken")))[0])
    assert failed.status == StackStatus.ROLLED_BACK
    client.force_login(staff_operator)

    rows = member_rows(page_of(client, failed))

    assert 'krp-status-failed">Failed<' in rows["reader"]
    assert "NoSuchPolicyAnywhere not found" in cell(rows["reader"], "error")
    assert 'krp-status-deleted">Deleted<' in rows["jobs"]


def test_a_built_stack_offers_delete_and_a_rolled_back_one_retry(client, staff_operator,
                                                                 requester, built):
    failed = drive(stack_submit(user=requester, document=broken(stack_name("broken")))[0])
    client.force_login(staff_operator)

    assert buttons_on(client, built) == {"delete"}
    assert buttons_on(client, failed) == {"retry"}


def test_pressing_approve_starts_the_stack_and_says_so(client, staff_operator, waiting):
    client.force_login(staff_operator)

    page = press(client, waiting, "approve")

    waiting.refresh_from_db()
    assert waiting.status == StackStatus.RUNNING and waiting.approved_by == staff_operator
    assert page.request["PATH_INFO"] == page_url(waiting)
    assert messages_of(page) == [f"Stack prod/{waiting.name} approved; it is now Running."]
    # Its first step is recorded: the members that depend on nothing.
    assert set(waiting.member_requests.values_list("stack_member", flat=True)) == {
        "jobs", "audit"}
    assert "krp-status-queued" in page.content.decode()


def test_pressing_cancel_withdraws_a_waiting_stack(client, staff_operator, waiting):
    client.force_login(staff_operator)

    page = press(client, waiting, "cancel")

    waiting.refresh_from_db()
    assert waiting.status == StackStatus.CANCELLED
    assert messages_of(page) == [f"Stack prod/{waiting.name} cancelled; it is now Cancelled."]


def test_pressing_delete_tears_the_stack_down(client, staff_operator, built):
    client.force_login(staff_operator)

    page = press(client, built, "delete")

    built.refresh_from_db()
    assert built.status == StackStatus.DELETING
    assert messages_of(page) == [
        f"Stack alpha/{built.name} sent for deletion; it is now Deleting."]
    # Dependents first: the members nothing refers to are the first deleted.
    first = set(built.members.filter(delete_request__isnull=False)
                .values_list("key", flat=True))
    assert first == {"events", "reader", "audit"}
    assert drive(built).status == StackStatus.DELETED


def test_pressing_retry_runs_a_rolled_back_stack_again(client, staff_operator, requester):
    failed = drive(stack_submit(user=requester, document=broken(stack_name("again")))[0])
    client.force_login(staff_operator)

    page = press(client, failed, "retry")

    failed.refresh_from_db()
    assert failed.status == StackStatus.RUNNING
    assert messages_of(page) == [f"Stack alpha/{failed.name} retried; it is now Running."]


def test_a_refused_press_shows_the_services_reason_and_changes_nothing(client, staff_operator,
                                                                      waiting):
    client.force_login(staff_operator)

    page = press(client, waiting, "delete")

    waiting.refresh_from_db()
    assert page.status_code == 200 and waiting.status == StackStatus.PENDING_APPROVAL
    assert messages_of(page) == [
        f"Stack prod/{waiting.name} was not sent for deletion: stack {waiting.pk} is "
        "pending_approval; only a stack that succeeded or failed can be deleted (cancel it "
        "instead)"]





def test_a_stacks_page_is_read_only(client, staff_operator, built):
    client.force_login(staff_operator)

    text = page_of(client, built)
    posted = client.post(page_url(built), {"name": "renamed"})

    built.refresh_from_db()
    assert 'name="_save"' not in text and "deletelink" not in text
    assert posted.status_code == 403 and built.name != "renamed"


def test_a_stacks_page_links_to_its_members_requests(client, staff_operator, built):
    client.force_login(staff_operator)
    text = page_of(client, built)
    url = re.search(r'<a href="([^"]+)">every request of its members</a>', text).group(1)

    listed = client.get(url.replace("&amp;", "&"))

    assert listed.status_code == 200
    shown = {str(request.pk) for request in listed.context["cl"].result_list}
    assert shown == {str(pk) for pk in built.member_requests.values_list("pk", flat=True)}
    assert len(shown) == 4


def test_a_member_request_links_to_its_stack_and_member(client, staff_operator, built):
    request = built.member_requests.get(stack_member="events")
    assert request.status == RequestStatus.SUCCEEDED
    client.force_login(staff_operator)

    text = client.get(change_url(request)).content.decode()

    assert (f'<a href="{page_url(built)}">alpha/{built.name}, member events</a>') in text
