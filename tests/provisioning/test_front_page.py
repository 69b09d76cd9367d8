"""The front page at `/`: what KRP is and where to go, and for a signed-in user their
teams' recent requests (the API's team scope), each linking to its admin page."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, Permission, User

from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

VIEW = "view_resourcerequest"


def names_listed(html: str) -> list[str]:
    """The request names in the recent-requests table, top to bottom."""
    table = html.split('id="recent-requests"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr class=\"request [^\"]*\">.*?<td>.*?</td>\s*<td>.*?</td>\s*"
                      r"<td>(?:<a [^>]*>)?([^<]+)", table, flags=re.S)


def signed_in(client, user: User, *permissions: str) -> User:
    user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
    client.force_login(user)
    return user


def test_anonymous_visitor_sees_what_krp_is_and_where_to_go(client):
    answer = client.get("/")

    assert answer.status_code == 200
    html = answer.content.decode()
    assert "ask KRP for AWS resources" in html
    for link in ('href="/api/docs/"', 'href="/admin/"', 'href="/healthz"', 'href="/readyz"',
                 'href="/admin/login/?next=/"'):
        assert link in html
    assert "S3 bucket" in html
    # Nothing of any team's, and no account ids, before signing in.
    assert "recent-requests" not in html
    assert "111111111111" not in html


def test_signed_in_user_sees_their_teams_recent_requests_linking_to_the_admin(
        client, requester):
    signed_in(client, requester, VIEW)
    made = submit(requester, "invoices", environment="prod", resource_type="sqs_queue")

    html = client.get("/").content.decode()

    assert names_listed(html) == ["invoices"]
    assert f'href="/admin/provisioning/resourcerequest/{made.pk}/change/"' in html
    assert "Pending Approval" in html and "sqs_queue" in html and ">prod<" in html
    assert "Sign out" in html and "rita" in html
    assert 'href="/admin/login/?next=/"' not in html


def test_recent_requests_are_the_ten_newest(client, requester):
    signed_in(client, requester, VIEW)
    for number in range(12):
        submit(requester, f"queue-{number:02d}", environment="prod", resource_type="sqs_queue")

    listed = names_listed(client.get("/").content.decode())

    assert listed == [f"queue-{number:02d}" for number in range(11, 1, -1)]


def test_another_teams_request_is_not_listed(client, requester):
    signed_in(client, requester, VIEW)
    outsider = User.objects.create_user("oscar")
    outsider.groups.add(Group.objects.create(name="payments"))
    submit(outsider, "their-queue", environment="prod", resource_type="sqs_queue")
    submit(requester, "our-queue", environment="prod", resource_type="sqs_queue")

    assert names_listed(client.get("/").content.decode()) == ["our-queue"]


def test_superuser_sees_every_teams_requests(client, requester):
    outsider = User.objects.create_user("oscar")
    outsider.groups.add(Group.objects.create(name="payments"))
    submit(outsider, "their-queue", environment="prod", resource_type="sqs_queue")
    submit(requester, "our-queue", environment="prod", resource_type="sqs_queue")
    client.force_login(User.objects.create_superuser("sue", password="sue-password"))

    assert names_listed(client.get("/").content.decode()) == ["our-queue", "their-queue"]


def test_without_the_admins_view_permission_names_are_not_links(client, requester):
    signed_in(client, requester)
    submit(requester, "invoices", environment="prod", resource_type="sqs_queue")

    html = client.get("/").content.decode()

    assert names_listed(html) == ["invoices"]
    assert "/admin/provisioning/resourcerequest/" not in html


def test_signed_in_user_without_requests_is_told_how_to_make_one(client, requester):
    signed_in(client, requester)

    html = client.get("/").content.decode()

    assert "No requests yet" in html
    assert names_listed(html) == []


def test_the_front_page_only_answers_reads(client):
    assert client.post("/").status_code == 405
