"""`krp createuser`: a team and an approver (or an operator) without the Django shell."""

import json

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token

from tests.cli import assert_refused, krp, krp_refused, run_krp
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def fresh(username: str) -> User:
    return User.objects.get(username=username)  # permissions are cached per instance


def test_createuser_makes_the_team_and_the_user_in_it():
    ran = krp("createuser", "bob", "--team", "payments")

    bob = fresh("bob")
    assert ran.stdout.strip() == ("user 'bob' created: teams payments; approver no; "
                                  "operator no; password none")
    assert list(bob.groups.values_list("name", flat=True)) == ["payments"]
    assert not bob.has_usable_password()
    assert not bob.has_perm("provisioning.approve_resourcerequest")


def test_an_approver_made_with_createuser_approves_another_members_request(requester):
    krp("createuser", "alice", "--team", "platform", "--approver")
    waiting = submit(requester, "orders", environment="prod")

    ran = krp("approve", str(waiting.pk), "--user", "alice")

    assert ran.stdout.strip() == f"request {waiting.pk} approved: now queued"


def test_the_approve_permission_is_the_users_not_the_teams():
    krp("createuser", "alice", "--team", "platform", "--approver")
    krp("createuser", "bob", "--team", "platform")

    assert fresh("alice").has_perm("provisioning.approve_resourcerequest")
    assert not fresh("bob").has_perm("provisioning.approve_resourcerequest")
    assert not Group.objects.get(name="platform").permissions.exists()


def test_running_it_again_adds_teams_and_applies_the_flags_without_failing():
    krp("createuser", "carol", "--team", "platform", "--approver")

    again = krp("createuser", "carol", "--team", "payments", "--no-approver", "--operator")

    carol = fresh("carol")
    assert again.stdout.strip() == ("user 'carol' updated: teams payments, platform; "
                                    "approver no; operator yes; password none")
    assert carol.is_staff
    assert carol.has_perm("provisioning.view_resourcerequest")
    assert User.objects.filter(username="carol").count() == 1
    assert Group.objects.filter(name="platform").count() == 1


@pytest.mark.parametrize("model", ["resourcerequest", "stack", "blueprint"])
def test_an_operator_may_use_the_admins_lists(client, model):
    krp("createuser", "olga", "--team", "platform", "--operator")
    client.force_login(fresh("olga"))

    page = client.get(f"/admin/provisioning/{model}/")

    assert page.status_code == 200


def test_token_prints_the_users_api_token_the_same_each_time():
    first = json.loads(krp("createuser", "dan", "--team", "platform", "--token",
                           "--json").stdout)
    again = krp("createuser", "dan", "--team", "platform", "--token")

    assert first["token"] == Token.objects.get(user__username="dan").key
    assert f"API token: {first['token']}" in again.stdout
    assert (first["created"], first["teams"], first["approver"]) == (True, ["platform"], False)


def test_a_bad_username_or_team_is_refused_naming_it():
    assert krp_refused("createuser", "bad name", "--team", "platform").error.startswith(
        "username: 'bad name' is not valid")
    assert krp_refused("createuser", "eve", "--team", " ").error == (
        "--team: a team's name is 1 to 150 characters")
    assert "the following arguments are required: --team" in krp_refused(
        "createuser", "eve").error
    assert not User.objects.filter(username__in=["bad name", "eve"]).exists()


@pytest.mark.django_db(transaction=True)
def test_password_is_read_from_standard_input_when_it_is_not_a_terminal(settings):
    # The process hashes with the project's hashers, not the suite's fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    done = run_krp("createuser", "erin", "--team", "platform", "--password",
                   stdin="a-long-enough-password\n")

    assert done.returncode == 0, done.stderr
    assert "password set" in done.stdout
    assert fresh("erin").check_password("a-long-enough-password")


@pytest.mark.django_db(transaction=True)
def test_an_empty_password_is_refused_and_no_user_is_made():
    done = run_krp("createuser", "fay", "--team", "platform", "--password", stdin="\n")

    assert_refused(done, "--password: the password is empty")
    assert not User.objects.filter(username="fay").exists()
