"""/api/v1/notification-channels/: a team registers webhooks and email addresses; a
webhook's secret is in the 201 and nowhere ever after; bad input is a 400 naming the
field; other teams' channels do not exist for you."""

from __future__ import annotations

import pytest
from dependency_injector import providers

from provisioning.models import NotificationChannel
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db

CHANNELS = "/api/v1/notification-channels/"
WEBHOOK = {"kind": "webhook", "url": "https://localhost/krp",
           "events": ["succeeded", "failed"]}


def channel_url(channel_id, action: str | None = None) -> str:
    return f"{CHANNELS}{channel_id}/" + (f"{action}/" if action else "")


def test_registering_a_webhook_shows_its_secret_once(requester_api):
    created = requester_api.post(CHANNELS, WEBHOOK, format="json")

    assert created.status_code == 201, created.json()
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert (body["team"], body["url"], body["email"], body["events"], body["enabled"]) == (
        "platform", WEBHOOK["url"], None, ["succeeded", "failed"], True)
    assert created.headers["Location"] == channel_url(body["id"])
    for again in (requester_api.get(CHANNELS), requester_api.get(channel_url(body["id"]))):
        assert again.status_code == 200
        assert secret not in again.content.decode()
        assert "secret" not in again.content.decode()


def test_an_email_channel_has_no_secret(requester_api):
    created = requester_api.post(CHANNELS, {"kind": "email", "email": "ops@example.org",
                                            "events": ["drift_found"]}, format="json")

    assert created.status_code == 201, created.json()
    assert (created.json()["email"], created.json()["secret"]) == ("ops@example.org", None)


@pytest.mark.parametrize(("change", "field"), [
    ({"url": "ftp://localhost/"}, "url"),
    ({"url": "https://user:password@localhost/"}, "url"),
    ({"url": "https:///no-host"}, "url"),
    ({"url": None}, "url"),
    ({"events": ["succeeded", "bogus"]}, "events"),
    ({"events": []}, "events"),
    ({"kind": "pager"}, "kind"),
    ({"kind": "email", "email": "not an address"}, "email"),
    ({"team": "data"}, "team"),
])
def test_bad_input_is_a_400_naming_the_field(requester_api, change, field):
    body = {key: value for key, value in {**WEBHOOK, **change}.items() if value is not None}

    answer = requester_api.post(CHANNELS, body, format="json")

    assert answer.status_code == 400, answer.json()
    assert field in error_of(answer)["fields"]
    assert not NotificationChannel.objects.exists()


def test_another_teams_channel_is_not_found(requester_api, other_operator_api):
    channel_id = other_operator_api.post(CHANNELS, WEBHOOK, format="json").json()["id"]

    assert requester_api.get(channel_url(channel_id)).status_code == 404
    assert requester_api.delete(channel_url(channel_id)).status_code == 404
    assert requester_api.post(channel_url(channel_id, "enable")).status_code == 404
    assert requester_api.get(CHANNELS).json()["results"] == []


def test_a_teammate_enables_a_disabled_channel_and_its_count_starts_again(
        requester_api, teammate_api):
    channel_id = requester_api.post(CHANNELS, WEBHOOK, format="json").json()["id"]
    NotificationChannel.objects.filter(pk=channel_id).update(
        enabled=False, consecutive_failures=5, disabled_reason="disabled after 5 ...")

    enabled = teammate_api.post(channel_url(channel_id, "enable"))

    assert enabled.status_code == 200, enabled.json()
    assert (enabled.json()["enabled"], enabled.json()["consecutive_failures"],
            enabled.json()["disabled_reason"]) == (True, 0, "")


def test_a_channel_is_removed(requester_api):
    channel_id = requester_api.post(CHANNELS, WEBHOOK, format="json").json()["id"]

    assert requester_api.delete(channel_url(channel_id)).status_code == 204
    assert not NotificationChannel.objects.exists()


def test_a_webhook_into_the_private_network_is_a_400_saying_why(
        requester_api, container, krp_settings):
    container.settings.override(providers.Object(krp_settings.model_copy(update={
        "webhook_allowed_networks": ()})))

    refused = requester_api.post(CHANNELS, {**WEBHOOK, "url": "http://169.254.169.254/latest/"},
                                 format="json")

    assert refused.status_code == 400
    [problem] = error_of(refused)["fields"]["url"]
    assert "169.254.169.254 is a link-local address" in problem
    assert "KRP_WEBHOOK_ALLOWED_NETWORKS" in problem
    assert not NotificationChannel.objects.exists()
