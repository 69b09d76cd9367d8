"""Deleting a resource another live KRP resource refers to (a queue a KRP topic subscribes
to) is refused with 409 has_dependents naming each, instead of leaving that one broken and
reconcile unable to put it right. A create or update in flight that refers to it counts
too, and a reference to a resource being deleted is refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from provisioning.models import RequestAction, ResourceStatus
from tests.api.conftest import REQUESTS, error_of, resource_url
from tests.fixtures.inventory import resource_in
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def subscribed_to(*queues: str) -> dict:
    return {"subscriptions": [{"queue": queue} for queue in queues]}


def test_deleting_a_queue_a_topic_subscribes_to_is_refused_naming_the_topic(
    requester, requester_api
):
    queue = resource_in(requester, "orders", resource_type="sqs_queue")
    resource_in(requester, "events", resource_type="sns_topic", spec=subscribed_to("orders"))
    resource_in(requester, "audit", resource_type="sns_topic", spec=subscribed_to("orders"))

    response = requester_api.delete(resource_url(queue.pk))

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "has_dependents"
    assert error["message"] == (
        "sqs_queue alpha/orders is referred to by sns_topic alpha/audit, sns_topic "
        "alpha/events; change or delete those first")
    assert not queue.requests.filter(action=RequestAction.DELETE).exists()


def test_a_queue_no_live_topic_refers_to_any_more_can_be_deleted(requester, requester_api):
    queue = resource_in(requester, "orders", resource_type="sqs_queue")
    topic = resource_in(requester, "events", resource_type="sns_topic",
                        spec=subscribed_to("orders"))
    topic.status = ResourceStatus.DELETED
    topic.save(update_fields=["status"])
    resource_in(requester, "other", resource_type="sns_topic", spec=subscribed_to())

    response = requester_api.delete(resource_url(queue.pk))

    assert response.status_code == 202, response.json()
    assert response.json()["action"] == "delete"


def test_a_topic_create_in_flight_that_subscribes_the_queue_counts_as_a_dependent(
    requester, requester_api
):
    queue = resource_in(requester, "orders", resource_type="sqs_queue")
    submit(requester, "events", resource_type="sns_topic", spec=subscribed_to("orders"))

    response = requester_api.delete(resource_url(queue.pk))

    assert response.status_code == 409
    assert "referred to by sns_topic alpha/events" in error_of(response)["message"]


def test_a_topic_cannot_subscribe_a_queue_whose_delete_is_in_flight(requester, requester_api):
    queue = resource_in(requester, "orders", resource_type="sqs_queue")
    assert requester_api.delete(resource_url(queue.pk)).status_code == 202

    response = requester_api.post(REQUESTS, {
        "environment": "alpha", "resource_type": "sns_topic", "name": "events",
        "spec": subscribed_to("orders")}, format="json")

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "unknown_reference"
    assert error["fields"] == {"spec": ["refers to sqs_queue 'orders', which is being deleted "
                                        "in alpha"]}


def test_a_missing_queue_a_topic_subscribes_to_cannot_be_forgotten(requester, operator,
                                                                   operator_api):
    operator.user_permissions.add(Permission.objects.get(codename="forget_resource"))
    queue = resource_in(requester, "orders", resource_type="sqs_queue")
    resource_in(requester, "events", resource_type="sns_topic", spec=subscribed_to("orders"))
    queue.status = ResourceStatus.MISSING  # as reconcile marks it
    queue.save(update_fields=["status"])

    response = operator_api.post(resource_url(queue.pk) + "forget/")

    assert response.status_code == 409
    assert error_of(response)["code"] == "has_dependents"
    queue.refresh_from_db()
    assert queue.status == ResourceStatus.MISSING
