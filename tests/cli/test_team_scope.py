"""`krp status / approve / cancel / retry --user U` see and act on U's teams' requests only,
as the API does: another team's request is "not found" to U. A superuser sees all."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User

from provisioning.models import RequestStatus, ResourceRequest
from provisioning.services.transitions import transition
from tests.cli import assert_refused, krp, krp_refused, run_krp
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def outsider(db) -> User:
    """dana: an operator (may approve) of another team."""
    user = User.objects.create_user("dana")
    user.groups.add(Group.objects.create(name="data"))
    user.user_permissions.add(Permission.objects.get(codename="approve_resourcerequest"))
    return User.objects.get(pk=user.pk)


def failed(request: ResourceRequest) -> ResourceRequest:
    transition(request.pk, from_statuses=["queued"], to="running", actor="worker")
    return transition(request.pk, from_statuses=["running"], to="failed", actor="worker")


@pytest.mark.parametrize("subcommand, status", [
    ("approve", RequestStatus.PENDING_APPROVAL),
    ("cancel", RequestStatus.QUEUED),
    ("retry", RequestStatus.FAILED),
])
def test_another_teams_request_is_not_found_to_a_transition(requester, outsider, subcommand,
                                                           status):
    request = submit(requester, environment="prod" if status == "pending_approval" else "alpha")
    if status == RequestStatus.FAILED:
        request = failed(request)

    refused = krp_refused(subcommand, str(request.pk), "--user", "dana")

    assert refused.error == f"no request {request.pk}"
    request.refresh_from_db()
    assert request.status == status
    # submitted (and planned, waiting for approval; run and failed)
    assert request.events.count() == (
        3 if status == RequestStatus.FAILED
        else 2 if status == RequestStatus.PENDING_APPROVAL else 1)


def test_status_lists_and_shows_only_the_users_teams_requests(requester, outsider):
    ours = submit(requester, "ours")
    theirs = submit(outsider, "theirs")

    listed = krp("status", "--user", "rita").stdout
    shown = krp_refused("status", str(theirs.pk), "--user", "rita")

    assert str(ours.pk) in listed and str(theirs.pk) not in listed
    assert shown.error == f"no request {theirs.pk}"


def test_a_superuser_sees_every_teams_requests(requester, outsider):
    User.objects.create_superuser("root", password=None)
    ours, theirs = submit(requester, "ours"), submit(outsider, "theirs")

    listed = krp("status", "--user", "root").stdout

    assert str(ours.pk) in listed and str(theirs.pk) in listed
    assert f"id: {theirs.pk}" in krp("status", str(theirs.pk), "--user", "root").stdout


def test_status_without_saying_who_asks_is_refused(requester):
    submit(requester)

    refused = krp_refused("status")

    assert refused.error == (
        "say who you act as: set KRP_USER=<username> or pass --user <username>")


@pytest.mark.django_db(transaction=True)
def test_a_process_cancelling_another_teams_request_exits_non_zero_and_changes_nothing(
    requester, outsider
):
    # Waiting for approval: committed here, so no worker of the session may run it meanwhile.
    request = submit(requester, environment="prod")

    assert_refused(run_krp("cancel", str(request.pk), "--user", "dana"),
                   f"no request {request.pk}")
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING_APPROVAL
