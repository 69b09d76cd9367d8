"""Notification channels in the admin: a webhook's secret is shown once, in the message
after it is added, and never in a form after; a channel's page shows its delivery log; a
disabled channel is announced to its team's members on the admin's home page and list,
and the list's action enables it again."""

from __future__ import annotations

import pytest
from dependency_injector import providers
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse

from provisioning.admin.display import change_url
from provisioning.models import Delivery, NotificationChannel
from tests.admin.conftest import make_staff, messages_of
from tests.fixtures.receivers import register_channel

pytestmark = pytest.mark.django_db

CHANNELS = reverse("admin:provisioning_notificationchannel_changelist")


@pytest.fixture
def channel_operator(operator) -> User:
    """otto, staff of `platform`, who may manage channels and read deliveries."""
    user = make_staff(operator)
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=["add_notificationchannel", "change_notificationchannel",
                      "view_notificationchannel", "delete_notificationchannel",
                      "view_delivery"]))
    return User.objects.get(pk=user.pk)


def disable(channel: NotificationChannel) -> None:
    NotificationChannel.objects.filter(pk=channel.pk).update(
        enabled=False, consecutive_failures=2,
        disabled_reason="disabled after 2 deliveries in a row failed; the last: HTTP 500")


def test_adding_a_webhook_shows_its_secret_once_and_never_in_its_form(
        client, channel_operator, team):
    client.force_login(channel_operator)

    added = client.post(reverse("admin:provisioning_notificationchannel_add"), {
        "team": team.pk, "kind": "webhook", "target": "https://localhost/krp",
        "events": ["succeeded", "failed"]}, follow=True)

    channel = NotificationChannel.objects.get()
    assert channel.secret.startswith("whsec_")
    assert any(channel.secret in message for message in messages_of(added))
    assert channel.events == ["succeeded", "failed"]
    for page in (client.get(change_url(channel)), client.get(CHANNELS)):
        assert page.status_code == 200
        assert channel.secret not in page.content.decode()


def test_a_webhook_url_with_credentials_is_refused_in_the_form(client, channel_operator, team):
    client.force_login(channel_operator)

    page = client.post(reverse("admin:provisioning_notificationchannel_add"), {
        "team": team.pk, "kind": "webhook", "target": "https://u:p@localhost/",
        "events": ["succeeded"]})

    assert page.status_code == 200
    assert "must not carry credentials" in page.content.decode()
    assert not NotificationChannel.objects.exists()


def test_a_webhook_into_the_private_network_is_refused_in_the_form(
        client, channel_operator, team, container, krp_settings):
    container.settings.override(providers.Object(krp_settings.model_copy(update={
        "webhook_allowed_networks": ()})))
    client.force_login(channel_operator)

    page = client.post(reverse("admin:provisioning_notificationchannel_add"), {
        "team": team.pk, "kind": "webhook", "target": "http://10.0.0.5/admin",
        "events": ["succeeded"]})

    assert page.status_code == 200
    assert "10.0.0.5 is a private address" in page.content.decode()
    assert not NotificationChannel.objects.exists()


def test_a_channels_page_shows_its_delivery_log(client, channel_operator, team):
    channel, _ = register_channel(team, "https://localhost/krp", ["succeeded"])
    Delivery.objects.create(channel=channel, event="succeeded", status="gave_up", attempts=3,
                            last_status_code=503, last_error="HTTP 503 (retried)")
    client.force_login(channel_operator)

    page = client.get(change_url(channel)).content.decode()

    assert "HTTP 503 (retried)" in page
    assert "gave_up" in page
    deliveries = client.get(reverse("admin:provisioning_delivery_changelist"))
    assert "HTTP 503 (retried)" in deliveries.content.decode()


def test_a_disabled_channel_is_announced_to_its_team_and_enabled_again_by_the_action(
        client, channel_operator, team):
    channel, _ = register_channel(team, "https://localhost/krp", ["succeeded"])
    disable(channel)
    client.force_login(channel_operator)

    home = client.get(reverse("admin:index")).content.decode()
    listed = client.get(CHANNELS)

    assert "disabled after 2 deliveries in a row failed" in home
    assert any("is disabled" in message for message in messages_of(listed))
    assert "krp-status-disabled" in listed.content.decode()
    client.post(CHANNELS, {"action": "enable", "_selected_action": [channel.pk]})
    channel.refresh_from_db()
    assert (channel.enabled, channel.consecutive_failures) == (True, 0)


def test_another_teams_disabled_channel_is_not_announced(client, channel_operator):
    channel, _ = register_channel(Group.objects.create(name="data"),
                                  "https://localhost/", ["succeeded"])
    disable(channel)
    client.force_login(channel_operator)

    assert "is disabled" not in client.get(reverse("admin:index")).content.decode()
    assert client.get(change_url(channel)).status_code == 302  # not theirs: not found


def test_a_channels_events_are_changed_in_its_form_and_its_kind_and_secret_stay(
        client, channel_operator, team):
    channel, secret = register_channel(team, "https://localhost/krp", ["succeeded"])
    client.force_login(channel_operator)

    client.post(change_url(channel), {"team": team.pk, "kind": "email",
                                      "target": "https://localhost/krp",
                                      "events": ["failed", "drift_found"]})

    channel.refresh_from_db()
    assert (channel.kind, channel.events, channel.secret) == (
        "webhook", ["failed", "drift_found"], secret)
