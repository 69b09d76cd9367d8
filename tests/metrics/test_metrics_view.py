"""/metrics answers to its bearer token or a staff session, and to nothing else; what it
answers is Prometheus' text format, as prometheus_client's own parser reads it."""

from __future__ import annotations

import pytest
from dependency_injector import providers
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.metrics.conftest import TOKEN

pytestmark = pytest.mark.django_db


def test_metrics_refuse_a_request_without_a_token():
    answer = Client().get("/metrics")

    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == 'Bearer realm="krp-metrics"'
    assert "Authorization: Bearer" in answer.content.decode()


def test_metrics_refuse_a_wrong_token_without_showing_the_right_one():
    answer = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})

    assert answer.status_code == 401
    assert TOKEN not in answer.content.decode()


def test_metrics_answer_the_token_in_prometheus_text_format():
    answer = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in
                text_string_to_metric_families(answer.content.decode())}
    assert families["krp_database_up"].samples[0].value == 1
    in_flight = {(s.labels["environment"], s.labels["status"])
                 for s in families["krp_requests_in_flight"].samples}
    assert ("alpha", "queued") in in_flight and ("prod", "pending_approval") in in_flight


def test_without_a_token_set_metrics_answer_only_a_staff_session(
        container, krp_settings, django_user_model):
    container.settings.override(providers.Object(
        krp_settings.model_copy(update={"metrics_token": None})))
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("stella", is_staff=True))

    refused = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert refused.status_code == 401
    assert "KRP_METRICS_TOKEN is not set" in refused.content.decode()
    assert staff.get("/metrics").status_code == 200
