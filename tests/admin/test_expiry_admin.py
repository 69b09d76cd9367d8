"""The inventory admin shows each resource's expiry, the warnings sent and who extended
it, and filters the resources expiring within 7 days or expired; the stack admin shows a
stack's expiry likewise."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from provisioning.admin.display import change_url
from provisioning.models import Resource, Stack
from provisioning.services import stack_submit
from provisioning.services.expiry import resource_extend
from provisioning.services.lifetimes import expiry_fields
from tests.fixtures.inventory import resource_in
from tests.fixtures.stacks import drive, stack_name

pytestmark = pytest.mark.django_db

INVENTORY = reverse("admin:provisioning_resource_changelist")


def expiring(user, name: str, expires_in: timedelta) -> Resource:
    resource = resource_in(user, name)
    Resource.objects.filter(pk=resource.pk).update(**expiry_fields(
        environment="alpha", expires_at=timezone.now() + expires_in))
    return resource


def test_the_resource_page_shows_its_expiry_warnings_and_extensions(client, staff_operator,
                                                                    requester):
    resource = expiring(requester, "ledger", timedelta(hours=1))
    Resource.objects.filter(pk=resource.pk).update(expiry_warnings=[
        {"before": "2h", "left": "1h", "sent_at": "2026-11-30T10:00:00+00:00"}])
    resource_extend(resource_id=resource.pk, user=staff_operator, ttl="1d")
    Resource.objects.filter(pk=resource.pk).update(expiry_warnings=[
        {"before": "2d", "left": "1d", "sent_at": "2026-11-30T11:00:00+00:00"}])
    client.force_login(staff_operator)

    page = client.get(change_url(resource)).content.decode()

    assert "Expiry" in page
    assert "2026-11-30T11:00:00+00:00 (1d left; the 2d warning)" in page
    assert "extended" in page and "expiry set to" in page and "otto" in page


@pytest.mark.parametrize(("choice", "listed"), [("soon", {"soon"}), ("expired", {"gone"})])
def test_the_inventory_filters_by_expiry(client, staff_operator, requester, choice, listed):
    expiring(requester, "soon", timedelta(days=2))
    expiring(requester, "gone", timedelta(seconds=-1))
    expiring(requester, "later", timedelta(days=30))
    resource_in(requester, "forever")
    client.force_login(staff_operator)

    page = client.get(INVENTORY, {"expiry": choice})

    assert {r.name for r in page.context["cl"].result_list} == listed


@pytest.mark.usefixtures("sandbox", "long_lease")
def test_the_stack_page_and_list_show_its_expiry_and_warnings(client, staff_operator,
                                                              requester):
    stack = drive(stack_submit(user=requester, document={
        "environment": "zeta", "name": stack_name("adm"), "ttl": "1d",
        "members": {"logs": {"resource_type": "s3_bucket", "spec": {}}}})[0])
    Stack.objects.filter(pk=stack.pk).update(expiry_warnings=[
        {"before": "3s", "left": "2s", "sent_at": "2026-11-30T11:00:00+00:00"}])
    client.force_login(staff_operator)

    page = client.get(change_url(stack)).content.decode()
    listed = client.get(reverse("admin:provisioning_stack_changelist"), {"expiry": "soon"})

    assert "Expiry" in page
    assert "2026-11-30T11:00:00+00:00 (2s left; the 3s warning)" in page
    assert [s.pk for s in listed.context["cl"].result_list] == [stack.pk]
