"""`krp extend --env E --type T NAME --ttl 3d`: a resource of your team gets a new expiry."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import Resource
from tests.cli import krp, krp_refused
from tests.fixtures.inventory import resource_in

pytestmark = pytest.mark.django_db


def test_extend_sets_a_new_expiry_from_now(requester):
    resource = resource_in(requester, "ledger", environment="zeta", ttl="1d")
    before = timezone.now()

    ran = krp("extend", "--user", "rita", "--env", "zeta", "--type", "s3_bucket", "ledger",
              "--ttl", "3d")

    expires_at = Resource.objects.get(pk=resource.pk).expires_at
    assert before + timedelta(days=3) <= expires_at <= timezone.now() + timedelta(days=3)
    assert ran.stdout.strip() == (f"resource {resource.pk} (s3_bucket zeta/ledger) now expires "
                                  f"at {expires_at.isoformat()}")


def test_extend_beyond_the_bound_is_refused_naming_it(requester):
    resource_in(requester, "ledger", environment="zeta", ttl="1d")

    ran = krp_refused("extend", "--user", "rita", "--env", "zeta", "--type", "s3_bucket",
                      "ledger", "--ttl", "8d")

    assert ran.error == "ttl_too_long: ttl: at most 7d in zeta"
