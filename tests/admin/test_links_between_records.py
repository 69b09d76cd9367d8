"""An operator follows a request to its resource, the resource's last request, its events
and its task result, and back; each link opens the record it names."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.admin.conftest import succeed
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def page(client, url: str, **query) -> str:
    answer = client.get(url, query)
    assert answer.status_code == 200, url
    return answer.content.decode()


def href_in(text: str, fieldname: str) -> str:
    """The link in a read-only field's box of a change page."""
    box = re.search(rf'<div class="[^"]*field-{fieldname}[^"]*">(.*?)</div>\s*</div>', text, re.S)
    assert box is not None, fieldname
    found = re.search(r'<a href="([^"]+)"', box.group(1))
    assert found is not None, f"no link in {fieldname}"
    return found.group(1).replace("&amp;", "&")


@pytest.fixture
def created_then_updated(requester):
    """A create that succeeded, and a later update of the same bucket still queued."""
    create = submit(requester, "linked")
    resource = succeed(create)
    update = submit(requester, "linked", action="update", spec={"versioning": True})
    return create, resource, update


def request_page(request) -> str:
    return reverse("admin:provisioning_resourcerequest_change", args=[request.pk])


def test_a_request_links_to_its_resource_and_the_resources_last_request(
    client, staff_operator, created_then_updated
):
    create, resource, update = created_then_updated
    client.force_login(staff_operator)

    text = page(client, request_page(create))
    resource_page = page(client, href_in(text, "resource_link"))
    last = href_in(text, "last_request_link")

    assert href_in(text, "resource_link") == reverse("admin:provisioning_resource_change",
                                                     args=[resource.pk])
    assert "linked" in resource_page and resource.arn in resource_page
    assert last == request_page(update)
    assert "Queued" in page(client, last)


def test_the_last_request_says_so_on_its_own_page(client, staff_operator, created_then_updated):
    _, _, update = created_then_updated
    client.force_login(staff_operator)

    text = page(client, request_page(update))

    assert re.search(r'field-last_request_link.*?this request', text, re.S)


def test_a_request_links_to_its_events_and_only_its_own(client, staff_operator,
                                                        created_then_updated):
    create, _, update = created_then_updated
    client.force_login(staff_operator)

    events = page(client, href_in(page(client, request_page(update)), "events_link"))

    assert "0 request events" not in events
    assert events.count('class="field-actor"') == update.events.count() == 1
    assert str(create.pk)[:8] not in events


def test_a_request_links_to_its_task_result_and_back(client, staff_operator,
                                                     created_then_updated):
    create, _, _ = created_then_updated
    client.force_login(staff_operator)

    result_page = page(client, href_in(page(client, request_page(create)), "task_result_link"))

    assert create.task_id in result_page
    assert href_in(result_page, "request_link") == request_page(create)


def test_a_resource_links_to_its_last_request_and_all_its_requests(client, staff_operator,
                                                                   created_then_updated,
                                                                   requester):
    create, resource, update = created_then_updated
    submit(requester, "unrelated")
    client.force_login(staff_operator)
    text = page(client, reverse("admin:provisioning_resource_change", args=[resource.pk]))

    listed = page(client, href_in(text, "requests_link"))

    assert href_in(text, "last_request_link") == request_page(update)
    assert str(create.pk)[:8] in listed and str(update.pk)[:8] in listed
    assert "unrelated" not in listed


def test_an_event_links_to_its_request(client, staff_operator, created_then_updated):
    _, _, update = created_then_updated
    client.force_login(staff_operator)

    events = page(client, reverse("admin:provisioning_requestevent_changelist"))

    assert f'<a href="{request_page(update)}">' in events
