"""An unexpected server error answers the API's one JSON error shape with status 500, never
Django's HTML page; the body holds no traceback, no exception text and no secret, and the
traceback is in the log under the reference the body gives.

The fault is real: a table the view reads is renamed away inside the test's transaction
(PostgreSQL's DDL is transactional, so the rollback at the end puts it back).
"""

from __future__ import annotations

import logging
import re

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import path

from krp_project import urls as project_urls
from provisioning.models import RequestEvent
from tests.api.conftest import error_of, request_url
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def test_a_database_fault_in_a_view_is_a_json_500_with_the_traceback_only_in_the_log(
    requester, requester_api, caplog
):
    request = submit(requester)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {RequestEvent._meta.db_table} RENAME TO krp_gone_events")

    with caplog.at_level(logging.ERROR):
        answer = requester_api.get(request_url(request.pk))

    assert answer.status_code == 500
    assert answer["Content-Type"] == "application/json"
    error = error_of(answer)
    assert (error["code"], error["fields"]) == ("internal_error", {})
    body = answer.content.decode()
    for leak in ("Traceback", "krp_gone_events", "requestevent", "ProgrammingError",
                 settings.SECRET_KEY):
        assert leak not in body, leak
    reference = re.search(r"reference ([0-9a-f]{12})", error["message"]).group(1)
    [logged] = [r for r in caplog.records if reference in r.getMessage()]
    assert logged.exc_info and "provisioning_requestevent" in str(logged.exc_info[1])


def fails_outside_drf(request):
    raise RuntimeError("a bug outside any DRF view, with a secret: hunter2")


# The project's URLs and its handler500, plus one plain Django view that fails.
urlpatterns = [path("api/v1/broken/", fails_outside_drf), *project_urls.urlpatterns]
handler500 = project_urls.handler500


@pytest.mark.urls(__name__)
def test_an_error_outside_a_drf_view_under_api_is_the_json_shape_too(caplog):
    # Django's own handler500 machinery, as in production (DEBUG off, no re-raise).
    client = Client(raise_request_exception=False)

    with caplog.at_level(logging.ERROR, logger="django.request"):
        answer = client.get("/api/v1/broken/")

    assert answer.status_code == 500
    error = error_of(answer)
    assert error["code"] == "internal_error"
    assert "hunter2" not in answer.content.decode()
    assert any(r.exc_info and "hunter2" in str(r.exc_info[1]) for r in caplog.records)
