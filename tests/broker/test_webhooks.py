"""Webhooks delivered by a real worker over the real broker (issue 17): a receiver (a real
HTTP server) gets signed deliveries whose signature verifies, a delivery it answered 500
is retried, and a receiver that keeps failing has its channel disabled after
KRP_WEBHOOK_MAX_FAILURES deliveries (2 in the suite, each tried KRP_NOTIFY_MAX_ATTEMPTS
= 3 times, 1-2 s apart: tests/settings.py, which the worker reads too)."""

from __future__ import annotations

import json
import time

import pytest
from django_celery_results.models import TaskResult

from provisioning.models import Delivery, NotificationChannel, RequestStatus, ResourceRequest
from provisioning.webhook_signing import verify
from tests.broker.test_provisioning import wait_for
from tests.fixtures.provisioning import unique_name
from tests.fixtures.receivers import register_channel
from tests.fixtures.requests import submit

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def wait_until(condition, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}; deliveries: "
                         f"{list(Delivery.objects.values_list('event', 'status', 'attempts'))}")


def settle() -> None:
    """Wait for the worker to finish with this test's rows (each request's run and each
    delivery's task recorded as done), so the test's teardown does not flush tables that
    the worker is still writing to. (Other krp.deliver results may be there: messages
    that tests without a worker published, run now and found nothing.)"""
    def done() -> bool:
        tasks = list(ResourceRequest.objects.values_list("task_id", flat=True))
        return (not ResourceRequest.objects.exclude(status=RequestStatus.SUCCEEDED).exists()
                and TaskResult.objects.filter(task_id__in=tasks, status="SUCCESS").count()
                == len(tasks)
                and all(TaskResult.objects.filter(task_name="krp.deliver", status="SUCCESS",
                                                  task_kwargs__contains=str(pk)).exists()
                        for pk in Delivery.objects.values_list("pk", flat=True)))
    wait_until(done, what="the worker done with the test's requests and deliveries")


def test_a_receiver_gets_signed_deliveries_retried_after_a_500(
        alpha_worker, requester, team, webhook_receiver):
    receiver = webhook_receiver([500, 200])
    channel, secret = register_channel(team, receiver.url, ["submitted", "succeeded"])

    request = wait_for(submit(requester, unique_name("hook")), RequestStatus.SUCCEEDED)
    wait_until(lambda: Delivery.objects.filter(status="delivered").count() == 2,
               what="both deliveries delivered")

    posts = receiver.wait_for(3)
    for post in posts:
        verify(post.body, post.headers["KRP-Signature"], secret)
    bodies = [json.loads(post.body) for post in posts]
    assert {body["request"]["id"] for body in bodies} == {str(request.pk)}
    assert sorted(body["event"] for body, post in zip(bodies, posts, strict=True)
                  if post.answered == 200) == ["submitted", "succeeded"]
    # The one answered 500 (the first POST) came again, as the same delivery.
    retried = posts[0].headers["KRP-Delivery"]
    assert [post.answered for post in posts if post.headers["KRP-Delivery"] == retried] == [
        500, 200]
    assert Delivery.objects.get(pk=retried).attempts == 2
    # The secret travels in no task message, no task result and no log line.
    settle()
    assert secret not in alpha_worker.log()
    for result in TaskResult.objects.filter(task_name="krp.deliver"):
        assert secret not in f"{result.task_args}{result.task_kwargs}{result.result}"
    assert TaskResult.objects.filter(task_name="krp.deliver").exists()


def test_a_receiver_that_keeps_failing_has_its_channel_disabled(
        alpha_worker, requester, team, webhook_receiver, krp_settings):
    receiver = webhook_receiver([500])
    channel, _ = register_channel(team, receiver.url, ["submitted"])
    limit = krp_settings.webhook_max_failures

    for _ in range(limit):
        submit(requester, unique_name("down"))

    wait_until(lambda: not NotificationChannel.objects.get(pk=channel.pk).enabled,
               what="the channel disabled")
    channel.refresh_from_db()
    assert channel.disabled_reason.startswith(f"disabled after {limit} deliveries in a row")
    wait_until(lambda: not Delivery.objects.filter(status="pending").exists(),
               what="no delivery pending")
    assert list(Delivery.objects.values_list("status", "attempts")) == [
        ("gave_up", krp_settings.notify_max_attempts)] * limit
    assert len(receiver.received) == limit * krp_settings.notify_max_attempts
    submit(requester, unique_name("after"))
    settle()
    assert Delivery.objects.count() == limit  # a disabled channel hears of nothing
