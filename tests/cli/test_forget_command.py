"""`krp forget ID`: an operator stops KRP tracking a resource reconcile found missing; and
`krp reconcile` names that way out, and the other (create it again), under each missing
finding."""

import json

import pytest
from django.contrib.auth.models import Permission, User

from provisioning.models import ResourceStatus
from tests.cli import krp, krp_outcome, krp_refused
from tests.fixtures.inventory import resource_in
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import carried_out, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def keeper(operator) -> User:
    operator.user_permissions.add(Permission.objects.get(codename="forget_resource"))
    return operator


def test_forget_marks_a_missing_resource_forgotten(requester, keeper):
    missing = resource_in(requester, "ledger", status=ResourceStatus.MISSING)

    ran = krp("forget", str(missing.pk), "--user", "otto")

    assert ran.stdout.strip() == f"resource {missing.pk} (s3_bucket alpha/ledger) forgotten"
    missing.refresh_from_db()
    assert missing.status == ResourceStatus.FORGOTTEN


def test_forget_json_is_the_resource_document(requester, keeper):
    missing = resource_in(requester, "ledger", status=ResourceStatus.MISSING)

    document = json.loads(krp("forget", str(missing.pk), "--user", "otto", "--json").stdout)

    assert (document["id"], document["status"]) == (str(missing.pk), "forgotten")


def test_forgetting_a_resource_that_is_there_is_refused_with_the_reason(requester, keeper):
    there = resource_in(requester, "ledger")

    refused = krp_refused("forget", str(there.pk), "--user", "otto")

    assert refused.error.startswith("not_missing: s3_bucket alpha/ledger is active; only a "
                                    "resource reconcile found missing")
    there.refresh_from_db()
    assert there.status == ResourceStatus.ACTIVE


@pytest.mark.parametrize("resource_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_forgetting_an_unknown_resource_is_refused(keeper, resource_id):
    refused = krp_refused("forget", resource_id, "--user", "otto")

    assert refused.error == f"not_found: resource {resource_id} does not exist"


@pytest.mark.django_db(transaction=True)  # the run's lease keeper renews from a thread
@pytest.mark.usefixtures("sandbox")
def test_reconcile_names_the_ways_out_under_a_missing_finding(requester, cloud):
    request = submit(requester, unique_name("gone"))
    carried_out(request)
    bucket = request.created_resources.get()
    cloud.client("alpha", "s3").delete_bucket(Bucket=bucket.physical_name)

    # The exit status depends on what else the session left in alpha (--fix resolves a
    # missing finding by marking it): only the report is this test's.
    ran = krp_outcome("reconcile", "--env", "alpha", "--fix")

    lines = ran.stdout.splitlines()
    at = lines.index(next(line for line in lines if line.endswith(bucket.arn)))
    assert lines[at].split()[0] == "missing"
    assert lines[at + 1].strip() == "-> marked missing in the inventory"
    assert lines[at + 2].strip() == (f"resource {bucket.pk}: create it again (a create of the "
                                      "same name) or `krp forget` it")
