"""Sending a delivery, in the test process (the broker tier proves it through a worker):
signed bodies a receiver verifies, retries of what may pass later, a channel disabled
after KRP_WEBHOOK_MAX_FAILURES deliveries in a row fail, email through Django's backend,
and never a secret in a log line or a task's arguments or result."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from containers.settings import KrpSettings
from krp_project.celery import create_celery_app
from provisioning.models import Delivery, NotificationChannel
from provisioning.services.deliveries import attempt_delivery, backoff, email_text
from provisioning.services.notifications import record_deliveries
from provisioning.services.sweep import sweep
from provisioning.webhook_signing import verify
from tests.fixtures.receivers import register_channel

pytestmark = pytest.mark.django_db


def deliver(channel: NotificationChannel, event: str = "succeeded") -> Delivery:
    """A delivery of `event` to the channel, recorded as the fan-out records one."""
    [delivery] = record_deliveries(team_id=channel.team_id, events=[event],
                                   payload_of=lambda event, team: {"team": team, "n": 1})
    return delivery


def attempt_until_done(delivery: Delivery, **options) -> Delivery:
    """Every attempt the delivery gets, back to back (a worker waits the backoff)."""
    while attempt_delivery(delivery_id=str(delivery.pk), **options).retry_in is not None:
        pass
    delivery.refresh_from_db()
    return delivery


def test_a_delivery_reaches_the_receiver_signed_so_that_it_verifies(team, webhook_receiver):
    receiver = webhook_receiver([200])
    channel, secret = register_channel(team, receiver.url, ["succeeded"])

    delivery = attempt_until_done(deliver(channel))

    [post] = receiver.received
    verify(post.body, post.headers["KRP-Signature"], secret)
    assert post.headers["KRP-Signature-Algorithm"] == "hmac-sha256"
    assert post.headers["KRP-Delivery"] == str(delivery.pk)
    assert json.loads(post.body) == delivery.payload
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        "delivered", 1, 200)


def test_a_500_is_retried_and_the_retry_is_the_same_delivery(team, webhook_receiver):
    receiver = webhook_receiver([500, 200])
    channel, secret = register_channel(team, receiver.url, ["succeeded"])

    first = attempt_delivery(delivery_id=str(deliver(channel).pk))

    assert first.status == "pending" and first.retry_in is not None
    delivery = attempt_until_done(Delivery.objects.get(pk=first.delivery_id))
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert [post.answered for post in receiver.received] == [500, 200]
    assert {post.headers["KRP-Delivery"] for post in receiver.received} == {str(delivery.pk)}


@pytest.mark.parametrize(("answer", "retried"), [(404, False), (410, False), (301, False),
                                                  (429, True), (408, True), (503, True)])
def test_what_an_answer_means_for_a_retry(team, webhook_receiver, answer, retried):
    channel, _ = register_channel(team, webhook_receiver([answer]).url, ["succeeded"])

    attempt = attempt_delivery(delivery_id=str(deliver(channel).pk))

    assert (attempt.retry_in is not None) is retried
    assert attempt.status == ("pending" if retried else "failed")


def test_a_receiver_that_is_down_is_retried_until_the_delivery_gives_up(team, krp_settings):
    channel, _ = register_channel(team, "http://127.0.0.1:9/down", ["succeeded"])

    delivery = attempt_until_done(deliver(channel))

    assert delivery.status == "gave_up"
    assert delivery.attempts == krp_settings.notify_max_attempts
    assert "could not connect" in delivery.last_error


def test_a_channel_is_disabled_after_the_documented_failures_in_a_row(
        team, webhook_receiver, krp_settings):
    receiver = webhook_receiver([404])
    channel, _ = register_channel(team, receiver.url, ["succeeded"])

    for _ in range(krp_settings.webhook_max_failures - 1):
        attempt_until_done(deliver(channel))
        channel.refresh_from_db()
        assert channel.enabled
    attempt_until_done(deliver(channel))

    channel.refresh_from_db()
    assert not channel.enabled
    assert channel.disabled_reason.startswith(
        f"disabled after {krp_settings.webhook_max_failures} deliveries in a row failed")
    assert record_deliveries(team_id=team.pk, events=["succeeded"],
                             payload_of=lambda event, team: {}) == []


def test_a_success_ends_the_channels_run_of_failures(team, webhook_receiver):
    receiver = webhook_receiver([404, 200])
    channel, _ = register_channel(team, receiver.url, ["succeeded"])

    attempt_until_done(deliver(channel))
    attempt_until_done(deliver(channel))

    channel.refresh_from_db()
    assert (channel.enabled, channel.consecutive_failures) == (True, 0)


def test_in_eager_mode_a_delivery_is_sent_once_in_this_process(
        container, team, webhook_receiver):
    """No worker retries later, and a retry here would hold the web request: one attempt."""
    eager = KrpSettings.from_environ({**os.environ, "KRP_TASK_MODE": "eager"})
    app = create_celery_app(eager, container=container)
    receiver = webhook_receiver([500])
    channel, _ = register_channel(team, receiver.url, ["succeeded"])
    delivery = deliver(channel)

    result = app.tasks["krp.deliver"].apply_async(kwargs={"delivery_id": str(delivery.pk)})

    assert result.successful(), result.traceback
    assert result.result == {"delivery": str(delivery.pk), "status": "gave_up", "attempts": 1}
    assert len(receiver.received) == 1


def test_an_email_channel_sends_one_plain_text_email_per_event(team):
    channel, secret = register_channel(team, "ops@example.org", ["succeeded"], kind="email")

    delivery = attempt_until_done(deliver(channel))

    assert secret is None
    assert delivery.status == "delivered"
    [email] = mail.outbox
    assert email.to == ["ops@example.org"]
    assert email.subject.startswith("[KRP] succeeded")
    assert str(delivery.pk) in email.body


def test_no_secret_in_the_log_or_the_tasks_arguments_and_result(
        team, webhook_receiver, caplog):
    receiver = webhook_receiver([500, 404])
    channel, secret = register_channel(team, receiver.url, ["succeeded"])
    delivery = deliver(channel)

    with caplog.at_level(logging.DEBUG):
        results = []
        while True:
            attempt = attempt_delivery(delivery_id=str(delivery.pk))
            results.append(attempt.as_result())
            if attempt.retry_in is None:
                break

    assert results[-1]["status"] == "failed"
    assert caplog.records, "the delivery logged nothing: this test would prove nothing"
    assert secret not in caplog.text
    assert secret not in json.dumps(results)
    assert secret not in json.dumps({"delivery_id": str(delivery.pk)})  # the task's kwargs
    assert secret not in json.dumps(Delivery.objects.filter(pk=delivery.pk).values().get(),
                                    default=str)


def test_a_drift_email_names_each_resource_found():
    finding = {"kind": "missing", "action_taken": "", "resource": {
        "resource_type": "s3_bucket", "name": "orders", "url": "/api/v1/resources/r-1/"}}

    subject, text = email_text({
        "event": "drift_found", "delivery": "d-1", "created_at": "2026-11-30T14:00:00+00:00",
        "team": "platform", "reconcile_run": {"environment": "alpha"},
        "findings": [finding], "findings_total": 1})

    assert subject == "[KRP] drift found: 1 resource(s) drifted or missing in alpha"
    assert "- missing: s3_bucket orders (/api/v1/resources/r-1/)" in text


def test_the_sweep_publishes_again_a_delivery_whose_message_was_lost(
        team, broker, krp_settings):
    channel, _ = register_channel(team, "http://127.0.0.1:9/krp", ["succeeded"])
    lost, recent = deliver(channel), deliver(channel)  # neither published: no commit here
    Delivery.objects.filter(pk=lost.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=krp_settings.queued_stale_seconds))

    assert sweep().deliveries == [str(lost.pk)]
    assert sweep().deliveries == []  # due again from its new publish
    assert Delivery.objects.get(pk=recent.pk).status == "pending"


@pytest.mark.parametrize("attempts", [1, 2, 5, 12])
def test_a_retrys_backoff_is_whole_seconds_within_its_bounds(attempts):
    """At least a second (RabbitMQ's delayed delivery refuses less), at most the cap (a
    countdown past half the visibility timeout would run twice on Redis)."""
    settings = KrpSettings.from_environ({"KRP_NOTIFY_BACKOFF_SECONDS": "1",
                                         "KRP_NOTIFY_BACKOFF_MAX_SECONDS": "300"})

    waits = {backoff(attempts, settings) for _ in range(50)}

    assert all(isinstance(wait, int) and 1 <= wait <= 300 for wait in waits)
    assert max(waits) <= min(300, 2 ** (attempts - 1))
