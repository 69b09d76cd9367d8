"""In eager mode (the embedded default) a 202 answers with what ran as the request committed."""

from __future__ import annotations

import pytest

from tests.api.conftest import REQUESTS
from tests.fixtures.provisioning import unique_name


@pytest.fixture
def eager(container):
    app = container.celery_app()
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.mark.django_db(transaction=True)
def test_a_request_waiting_for_approval_answers_with_its_plan(eager, requester_api, sandbox):
    name = unique_name("eager-plan")
    response = requester_api.post(REQUESTS, {
        "environment": "prod", "resource_type": "sqs_queue", "name": name}, format="json")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "pending_approval"
    assert body["plan"]["lines"][0] == f"will create sqs_queue krp-prod-{name}"
