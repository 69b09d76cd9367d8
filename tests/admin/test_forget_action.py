"""Operators forget a missing resource from the admin's inventory list, through the same
service as the API and `krp forget`; a refusal is shown with its reason."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from provisioning.models import ResourceStatus
from tests.fixtures.inventory import resource_in

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:provisioning_resource_changelist")


@pytest.fixture
def staff_keeper(operator) -> User:
    operator.is_staff = True
    operator.save()
    operator.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_resource", "change_resource", "forget_resource"]))
    return User.objects.get(pk=operator.pk)


def forget(client, *resources):
    return client.post(CHANGELIST, {"action": "forget_missing_resources",
                                    "_selected_action": [str(r.pk) for r in resources]},
                       follow=True)


def test_operator_forgets_a_missing_resource_and_is_told_why_another_is_not(
    client, staff_keeper, requester
):
    missing = resource_in(requester, "ledger", status=ResourceStatus.MISSING)
    there = resource_in(requester, "orders")
    client.force_login(staff_keeper)

    page = forget(client, missing, there).content.decode()

    missing.refresh_from_db()
    there.refresh_from_db()
    assert (missing.status, there.status) == (ResourceStatus.FORGOTTEN, ResourceStatus.ACTIVE)
    assert '<li class="success">Forgot s3_bucket alpha/ledger.</li>' in page
    assert ('<li class="error">S3_bucket alpha/orders is active; only a resource reconcile '
            'found missing') in page
