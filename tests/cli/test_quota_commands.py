"""Quotas from a shell: `krp quotas` lists a team's quotas with their use, and `krp submit`
beyond one is refused with the quota's code and words."""

import pytest

from provisioning.models import Quota
from tests.cli import krp, krp_refused
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def test_quotas_lists_each_quota_with_its_use(requester, team):
    Quota.objects.create(team=team, environment="alpha", resource_type="", max_live=4)
    submit(requester, "one")

    ran = krp("quotas", "--user", "rita", "--env", "alpha")

    assert ran.stdout.splitlines()[1].split() == ["platform", "alpha", "*", "1/4", "1/-"]


def test_submit_beyond_a_quota_is_refused_naming_it(requester, team):
    Quota.objects.create(team=team, environment="alpha", resource_type="s3_bucket",
                         max_live=0)

    refused = krp_refused("submit", "--user", "rita", "--env", "alpha", "--type",
                          "s3_bucket", "--name", "over", "--spec", "{}")

    assert refused.error == ("quota_exceeded: team platform's quota for s3_bucket in alpha is 0 "
                       "live resources; it has 0 (0 live, 0 being created)")
