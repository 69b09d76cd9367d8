"""Quotas in the admin: operators (krp createuser --operator) set them, each row showing
what the team holds under it now; a team's staff without the change permission see their
teams' quotas read-only; an environment or type KRP does not know is refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.urls import reverse

from provisioning.models import Quota
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

LIST = reverse("admin:provisioning_quota_changelist")
ADD = reverse("admin:provisioning_quota_add")


@pytest.fixture
def quota_operator(db) -> User:
    call_command("krp", "createuser", "opal", "--team", "ops", "--operator", stdout=None)
    return User.objects.get(username="opal")


def test_the_list_shows_each_quota_with_its_use(client, quota_operator, requester, team):
    Quota.objects.create(team=team, environment="alpha", resource_type="s3_bucket",
                         max_live=5, max_in_flight=3)
    submit(requester, "one")
    submit(requester, "two")
    client.force_login(quota_operator)

    page = client.get(LIST)

    assert page.status_code == 200
    text = page.content.decode()
    assert '<td class="field-live_use">2 (0 live, 2 being created)</td>' in text
    assert '<td class="field-in_flight_use">2</td>' in text


def test_an_operator_sets_a_quota_and_is_recorded_as_setting_it(client, quota_operator,
                                                                  team):
    client.force_login(quota_operator)

    answer = client.post(ADD, {"team": team.pk, "environment": "", "resource_type": "sqs_queue",
                               "max_live": "4", "max_in_flight": "", "note": "agreed in Q3"})

    assert answer.status_code == 302, answer.content.decode()
    quota = Quota.objects.get()
    assert (quota.environment, quota.resource_type, quota.max_live, quota.set_by) == (
        "", "sqs_queue", 4, quota_operator)


def test_an_unknown_environment_is_refused(client, quota_operator, team):
    client.force_login(quota_operator)

    answer = client.post(ADD, {"team": team.pk, "environment": "staging",
                               "resource_type": "", "max_live": "4"})

    assert answer.status_code == 200
    assert "Select a valid choice. staging is not one of the available choices." in (
        answer.content.decode())
    assert not Quota.objects.exists()


def test_team_staff_without_the_change_permission_see_only_their_teams_quotas(
        client, requester, team):
    other_team = Group.objects.create(name="data")
    requester.is_staff = True
    requester.save()
    requester.user_permissions.add(Permission.objects.get(codename="view_quota"))
    mine = Quota.objects.create(team=team, environment="alpha", max_live=1)
    theirs = Quota.objects.create(team=other_team, environment="alpha", max_live=1)
    client.force_login(requester)

    listed = client.get(LIST).content.decode()
    page = client.get(reverse("admin:provisioning_quota_change", args=[mine.pk]))

    assert reverse("admin:provisioning_quota_change", args=[mine.pk]) in listed
    assert reverse("admin:provisioning_quota_change", args=[theirs.pk]) not in listed
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


def test_the_environment_filter_lists_the_quotas_that_cover_it(client, quota_operator, team):
    anywhere = Quota.objects.create(team=team, environment="", max_live=1)
    prod = Quota.objects.create(team=team, environment="prod", max_live=1)
    client.force_login(quota_operator)

    listed = client.get(LIST, {"environment": "alpha"}).content.decode()

    assert reverse("admin:provisioning_quota_change", args=[anywhere.pk]) in listed
    assert reverse("admin:provisioning_quota_change", args=[prod.pk]) not in listed
