"""`krp sweep`: one run of the sweep, reported as text or JSON."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import RequestStatus, ResourceRequest
from tests.cli import krp, run_krp
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

KINDS = ["expired", "reclaimed", "failed", "published", "stacks", "expiry_warned",
         "expiry_deletes", "expiry_held", "stack_expiry_warned", "stack_expiry_deletes",
         "stack_expiry_held", "deliveries"]


def overdue(user) -> ResourceRequest:
    """A prod request waiting for approval whose deadline has just passed."""
    request = submit(user, unique_name("cli"), environment="prod",
                     deadline=timezone.now() + timedelta(hours=1))
    ResourceRequest.objects.filter(pk=request.pk).update(
        deadline=timezone.now() - timedelta(seconds=1))
    return request


def test_sweep_reports_what_it_did_in_one_line_per_kind(requester):
    request = overdue(requester)

    ran = krp("sweep")

    lines = ran.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == KINDS
    assert lines[0].startswith("expired: ") and str(request.pk) in lines[0]
    request.refresh_from_db()
    assert request.status == RequestStatus.EXPIRED


def test_sweep_json_lists_the_ids_of_each_kind(requester):
    request = overdue(requester)

    report = json.loads(krp("sweep", "--json").stdout)

    assert set(report) == set(KINDS)
    assert str(request.pk) in report["expired"]


def test_sweep_as_a_process_exits_zero_with_a_json_report():
    done = run_krp("sweep", "--json")  # sees no rows of this test's open transaction

    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == set(KINDS)
