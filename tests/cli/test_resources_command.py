"""`krp resources`: the inventory of your teams with each resource's expiry and time left;
`krp resources ID`: one resource with its warnings and events; `--json`: the API's documents."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from provisioning.models import Resource
from provisioning.services.expiry import resource_extend, warn
from tests.cli import krp, krp_refused
from tests.fixtures.inventory import resource_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def outsider(db) -> User:
    """dana, of another team."""
    user = User.objects.create_user("dana")
    user.groups.add(Group.objects.create(name="data"))
    return user


def expiring(resource: Resource, after: timedelta) -> Resource:
    Resource.objects.filter(pk=resource.pk).update(expires_at=timezone.now() + after)
    return Resource.objects.get(pk=resource.pk)


def row_of(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if f" {name} " in line)


def test_the_table_shows_each_expiry_with_the_time_left(requester):
    soon = expiring(resource_in(requester, "soon"), timedelta(days=2, hours=3, minutes=5))
    past = expiring(resource_in(requester, "past"), -timedelta(minutes=1))
    resource_in(requester, "forever")

    table = krp("resources", "--user", "rita").stdout

    assert table.splitlines()[0].split() == ["ENV", "TYPE", "NAME", "STATUS", "TEAM", "EXPIRES"]
    assert [line.split()[2] for line in table.splitlines()[1:]] == ["forever", "past", "soon"]
    assert row_of(table, "soon").split() == [
        "alpha", "s3_bucket", "soon", "active", "platform",
        *f"{soon.expires_at:%Y-%m-%d %H:%M:%S} UTC (in 2d 3h)".split()]
    assert row_of(table, "past").endswith(f"{past.expires_at:%Y-%m-%d %H:%M:%S} UTC (expired)")
    assert row_of(table, "forever").endswith("platform  -")


def test_expiring_within_lists_only_the_live_ones_expiring_by_then_soonest_first(requester):
    expiring(resource_in(requester, "soon"), timedelta(days=2))
    expiring(resource_in(requester, "past"), -timedelta(hours=1))
    expiring(resource_in(requester, "later"), timedelta(days=9))
    expiring(resource_in(requester, "gone", status="deleted"), timedelta(days=1))
    resource_in(requester, "forever")

    table = krp("resources", "--user", "rita", "--expiring-within", "7d").stdout
    refused = krp_refused("resources", "--user", "rita", "--expiring-within", "soon")

    assert [line.split()[2] for line in table.splitlines()[1:]] == ["past", "soon"]
    assert refused.error.startswith("--expiring-within: 'soon' is not a duration such as")


def test_an_unknown_environment_is_refused_naming_the_known_ones(requester):
    refused = krp_refused("resources", "--user", "rita", "--env", "staging")

    assert refused.error.startswith("invalid_filter: ")
    assert "'staging' is not one of the known values: alpha, prod" in refused.error


def test_another_teams_resource_is_neither_listed_nor_found(requester, outsider):
    resource_in(requester, "ours")
    theirs = resource_in(outsider, "theirs")

    table = krp("resources", "--user", "rita").stdout
    refused = krp_refused("resources", str(theirs.pk), "--user", "rita")

    assert " ours " in table and "theirs" not in table
    assert refused.error == f"no resource {theirs.pk}"


def test_one_resource_shows_its_expiry_warnings_and_events(requester):
    resource = resource_in(requester, "ledger", environment="zeta", ttl="1d")
    extended = resource_extend(resource_id=resource.pk, user=requester, ttl="3d")
    warn(extended, left=timedelta(days=2), before=timedelta(days=2), now=timezone.now())
    Resource.objects.filter(pk=resource.pk).update(expiry_problem="quota_exceeded: full")

    shown = krp("resources", str(resource.pk), "--user", "rita").stdout

    assert f"expires: {extended.expires_at:%Y-%m-%d %H:%M:%S} UTC (in 2d 23h)" in shown
    assert "2d left (the 2d warning)" in shown
    assert "expiry problem: quota_exceeded: full" in shown
    events = shown.split("events:\n")[1].splitlines()
    assert [line.split()[1:4] for line in events] == [
        ["active", "->", "extended"], ["active", "->", "warned"]]
    assert "(rita) expiry set to" in events[0] and "(sweep) expires at" in events[1]


def test_json_prints_the_apis_documents(requester):
    resource = expiring(resource_in(requester, "ledger"), timedelta(days=1))
    api = APIClient()
    api.force_authenticate(requester)
    answer = api.get(f"/api/v1/resources/{resource.pk}/")
    assert answer.status_code == 200, answer.content

    listed = json.loads(krp("resources", "--user", "rita", "--json").stdout)
    shown = json.loads(krp("resources", str(resource.pk), "--user", "rita", "--json").stdout)

    assert listed == [answer.json()]
    assert {key: value for key, value in shown.items() if key != "events"} == answer.json()
    assert shown["events"] == []
