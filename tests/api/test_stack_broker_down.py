"""A stack posted while the broker is down loses nothing: POST records it and its first
step (202); once the broker is back the sweep publishes the step's jobs and moves the stack
on, and a worker carries it to the end.

As in test_broker_down: a private broker of the pass's kind that the test really stops, a
real web process (runserver), `manage.py krp sweep` as beat would run it, and a real
worker on the private broker.
"""

from __future__ import annotations

import time

import pytest

from provisioning.models import RequestStatus, Stack, StackStatus
from tests.api.test_broker_down import post, run_sweep, token, web  # noqa: F401 (fixtures)
from tests.fixtures.stacks import SETTLED, stack_name

pytestmark = [pytest.mark.broker, pytest.mark.private_broker,
              pytest.mark.django_db(transaction=True)]


def test_a_stack_posted_while_the_broker_is_down_ends_once_it_is_back(
    private_broker, web, token, start_worker  # noqa: F811
):
    private_broker.stop()
    status, body = post(web, token, "/api/v1/stacks/", {
        "environment": "alpha", "name": stack_name("outage"), "members": {
            "jobs": {"resource_type": "sqs_queue"},
            "events": {"resource_type": "sns_topic",
                       "spec": {"subscriptions": [{"queue": {"ref": "jobs.name"}}]}}}})

    assert status == 202, body
    stack = Stack.objects.get(pk=body["id"])
    first = stack.member_requests.get()
    assert (first.stack_member, first.status, first.published_at) == (
        "jobs", RequestStatus.QUEUED, None)

    private_broker.start()
    start_worker("alpha", name="alpha-after-outage",
                 env={"KRP_BROKER_URL": private_broker.url}).wait_for("ready.")
    deadline = time.monotonic() + 90
    published = []
    while time.monotonic() < deadline:
        published += run_sweep(private_broker.url)["published"]
        stack.refresh_from_db()
        if stack.status in SETTLED:
            break
        time.sleep(1)

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    assert str(first.pk) in published
    events = stack.members.get(key="events").request
    assert events.spec["subscriptions"][0]["queue"] == stack.members.get(key="jobs").name
