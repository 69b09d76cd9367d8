"""The users a section works as: an API user with a token, in a team, and an admin."""

from __future__ import annotations


def api_user(username: str = "bench", teams: tuple[str, ...] = ("bench",)):
    """(user, token key): a user in `teams` (groups), with a DRF token."""
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    user, _ = User.objects.get_or_create(username=username)
    for team in teams:
        user.groups.add(Group.objects.get_or_create(name=team)[0])
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key


def admin_session() -> str:
    """The session cookie of a logged-in superuser, good for any web process of the
    section (sessions live in the database)."""
    from django.contrib.auth.models import User
    from django.test import Client

    admin = User.objects.filter(username="bench-admin").first() or (
        User.objects.create_superuser("bench-admin", "bench@example.com", "x"))
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    return client.cookies["sessionid"].value
