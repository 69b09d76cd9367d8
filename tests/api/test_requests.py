"""/api/v1/requests/: submit, list, read, approve, cancel, retry; idempotency; who is calling.

Nothing here reaches AWS: the API only records requests, and a test's transaction never
commits, so not even a job message is published. Where a request must have run, the test
moves it through the state machine's own transition, as a worker would.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from provisioning.models import RequestEvent, RequestStatus, ResourceRequest
from tests.api.conftest import REQUESTS, error_of, request_url
from tests.fixtures.requests import submit as service_submit

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    return [item["name"] for item in response.json()["results"]]


# -- submit --------------------------------------------------------------------------------


def test_submit_answers_202_with_the_request_and_where_to_watch_it(requester_api, submit):
    response = submit(requester_api)

    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == request_url(body["id"]) == body["url"]
    assert {key: body[key] for key in ("status", "environment", "resource_type", "name",
                                       "action", "team", "requested_by", "attempts")} == {
        "status": "queued", "environment": "alpha", "resource_type": "s3_bucket",
        "name": "orders", "action": "create", "team": "platform", "requested_by": "rita",
        "attempts": 0,
    }
    assert body["spec"]["versioning"] is True
    assert body["error"] is None and body["outputs"] == {}


def test_submit_records_the_task_id_it_will_publish_with(requester_api, submit):
    body = submit(requester_api).json()

    recorded = ResourceRequest.objects.get()
    assert str(recorded.pk) == body["id"]
    assert body["task_id"] and recorded.task_id == body["task_id"]


@pytest.mark.parametrize("environment", ["alpha", "prod"])
def test_submit_answers_with_what_reading_the_request_shows(requester_api, submit,
                                                            environment):
    answer = submit(requester_api, environment=environment, tags={"owner": "rita"},
                    deadline=(timezone.now() + timedelta(hours=1)).isoformat())

    read = requester_api.get(answer["Location"])
    assert answer.json() == read.json()


def test_a_task_status_recorded_after_submit_shows_once_the_request_is_read_again(requester):
    from django_celery_results.models import TaskResult

    request = service_submit(requester)
    assert request.task_result is None  # not run yet
    TaskResult.objects.create(task_id=request.task_id, status="STARTED")

    request.refresh_from_db()
    assert request.task_result.status == "STARTED"


def test_submit_writes_one_audit_event_shown_in_the_answer(requester_api, submit):
    body = submit(requester_api).json()

    assert [(e["from_status"], e["to_status"], e["actor"]) for e in body["events"]] == [
        ("", "queued", "rita")
    ]
    assert RequestEvent.objects.count() == 1


def test_submit_to_an_environment_that_needs_approval_waits_for_it(requester_api, submit):
    body = submit(requester_api, environment="prod").json()

    assert body["status"] == "pending_approval"
    assert body["queued_at"] is None
    assert "requires approval" in body["events"][0]["message"]


def test_submit_keeps_tags_and_schedule(requester_api, submit):
    not_before = timezone.now() + timedelta(minutes=5)
    deadline = timezone.now() + timedelta(hours=1)

    body = submit(requester_api, tags={"cost-centre": "42"}, not_before=not_before.isoformat(),
                  deadline=deadline.isoformat()).json()

    assert body["tags"] == {"cost-centre": "42"}
    recorded = ResourceRequest.objects.get()
    assert (recorded.not_before, recorded.deadline) == (not_before, deadline)


def test_submit_names_the_team_for_a_member_of_several(requester_api, requester, other_team,
                                                      submit):
    requester.groups.add(other_team)

    body = submit(requester_api, team="data").json()

    assert body["team"] == "data"


# -- list ----------------------------------------------------------------------------------


def test_list_shows_the_newest_request_first(requester_api, submit):
    for name in ("first", "second", "third"):
        assert submit(requester_api, name=name).status_code == 202

    response = requester_api.get(REQUESTS)

    assert response.status_code == 200
    assert names(response) == ["third", "second", "first"]


def test_list_is_paged_by_cursor_with_a_next_page_and_no_count(requester, requester_api):
    for number in range(51):
        service_submit(requester, f"bucket-{number:02d}")

    first = requester_api.get(REQUESTS).json()
    second = requester_api.get(first["next"]).json()

    assert set(first) == {"next", "previous", "results"}
    assert (len(first["results"]), first["previous"]) == (50, None)
    assert "cursor=" in first["next"]
    assert [item["name"] for item in second["results"]] == ["bucket-00"]
    assert second["next"] is None


def test_list_item_has_the_contract_fields_but_not_the_events(requester_api, submit):
    submit(requester_api)

    item = requester_api.get(REQUESTS).json()["results"][0]

    assert {"id", "url", "status", "environment", "resource_type", "name", "action",
            "task_id", "error", "outputs", "attempts"} <= set(item)
    assert "events" not in item


@pytest.fixture
def four_requests(requester, other_operator, request_in):
    request_in(requester, RequestStatus.QUEUED, name="orders")
    request_in(requester, RequestStatus.PENDING_APPROVAL, name="ledger")
    request_in(requester, RequestStatus.FAILED, name="jobs", resource_type="sqs_queue")
    request_in(other_operator, RequestStatus.SUCCEEDED, name="lake")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({"environment": "prod"}, {"ledger"}, id="environment"),
        pytest.param({"resource_type": "sqs_queue"}, {"jobs"}, id="resource_type"),
        pytest.param({"status": "failed"}, {"jobs"}, id="status"),
        pytest.param({"team": "data"}, {"lake"}, id="team"),
        pytest.param({"name": "orders"}, {"orders"}, id="name"),
        pytest.param({"environment": "alpha", "resource_type": "s3_bucket"},
                     {"orders", "lake"}, id="environment and resource_type"),
        pytest.param({"status": "expired"}, set(), id="nothing matches"),
    ],
)
def test_list_filters_narrow_what_is_shown(superuser_api, four_requests, query, expected):
    response = superuser_api.get(REQUESTS, query)

    assert response.status_code == 200
    assert set(names(response)) == expected


# -- detail --------------------------------------------------------------------------------


def test_detail_tells_the_story_in_events_oldest_first(requester, requester_api, request_in):
    request = request_in(requester, RequestStatus.SUCCEEDED)

    body = requester_api.get(request_url(request.pk)).json()

    assert [(e["from_status"], e["to_status"]) for e in body["events"]] == [
        ("", "queued"), ("queued", "running"), ("running", "succeeded"),
    ]
    assert {"from_status", "to_status", "actor", "message", "created_at"} == set(
        body["events"][0]
    )


def test_detail_shows_outputs_once_succeeded(requester, requester_api, request_in):
    request = request_in(requester, RequestStatus.SUCCEEDED)

    body = requester_api.get(request_url(request.pk)).json()

    assert body["status"] == "succeeded"
    assert body["outputs"] == {"arn": "arn:aws:s3:::krp-alpha-orders",
                               "bucket": "krp-alpha-orders"}
    assert body["error"] is None
    assert body["attempts"] == 1
    assert body["finished_at"] is not None


def test_detail_shows_the_error_code_and_message_once_failed(requester, requester_api,
                                                             request_in):
    request = request_in(requester, RequestStatus.FAILED)

    body = requester_api.get(request_url(request.pk)).json()

    assert body["status"] == "failed"
    assert body["error"] == {"code": "permanent_cloud_error",
                             "message": "AccessDenied: not allowed to create the bucket"}


def test_detail_before_any_run_has_no_task_status(requester, requester_api, request_in):
    request = request_in(requester, RequestStatus.QUEUED)

    body = requester_api.get(request_url(request.pk)).json()

    assert body["task_status"] is None
    assert body["started_at"] is None


def test_detail_of_a_malformed_id_is_404_in_the_error_shape(requester_api):
    response = requester_api.get(request_url("not-a-uuid"))

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


# -- approve, cancel, retry ----------------------------------------------------------------


def test_operator_approves_a_waiting_request_and_it_is_queued(requester, operator_api,
                                                              request_in):
    request = request_in(requester, RequestStatus.PENDING_APPROVAL)

    response = operator_api.post(request_url(request.pk, "approve"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "queued" and body["queued_at"] is not None
    assert (body["events"][-1]["actor"], body["events"][-1]["message"]) == ("otto", "approved")


def test_approving_a_request_that_does_not_wait_is_409_saying_why(requester, operator_api,
                                                                  request_in):
    request = request_in(requester, RequestStatus.QUEUED)

    response = operator_api.post(request_url(request.pk, "approve"))

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "invalid_transition"
    assert "is queued; cannot approve it" in error["message"]


def test_cancel_withdraws_a_queued_request(requester, requester_api, request_in):
    request = request_in(requester, RequestStatus.QUEUED)

    response = requester_api.post(request_url(request.pk, "cancel"))

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None


def test_cancelling_a_request_that_already_ran_is_409_saying_why(requester, requester_api,
                                                                 request_in):
    request = request_in(requester, RequestStatus.SUCCEEDED)

    response = requester_api.post(request_url(request.pk, "cancel"))

    assert response.status_code == 409
    assert "is succeeded; cannot cancel it" in error_of(response)["message"]
    assert ResourceRequest.objects.get(pk=request.pk).status == RequestStatus.SUCCEEDED


def test_retry_queues_a_failed_request_afresh(requester, requester_api, request_in):
    request = request_in(requester, RequestStatus.FAILED)

    response = requester_api.post(request_url(request.pk, "retry"))

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["error"], body["attempts"]) == ("queued", None, 0)
    assert body["task_id"] != request.task_id


def test_retrying_a_request_that_has_not_failed_is_409_saying_why(requester, requester_api,
                                                                  request_in):
    request = request_in(requester, RequestStatus.QUEUED)

    response = requester_api.post(request_url(request.pk, "retry"))

    assert response.status_code == 409
    assert "is queued; cannot retry it" in error_of(response)["message"]


def test_retrying_a_request_past_its_deadline_is_409_asking_for_a_new_one(
    requester, requester_api, request_in,
):
    request = request_in(requester, RequestStatus.FAILED,
                         deadline=timezone.now() + timedelta(hours=1))
    ResourceRequest.objects.filter(pk=request.pk).update(
        deadline=timezone.now() - timedelta(minutes=1)
    )

    response = requester_api.post(request_url(request.pk, "retry"))

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "past_deadline"
    assert "submit a new request" in error["message"]


def test_a_refused_action_writes_no_event(requester, requester_api, request_in):
    request = request_in(requester, RequestStatus.SUCCEEDED)
    before = request.events.count()

    requester_api.post(request_url(request.pk, "retry"))

    assert request.events.count() == before


# -- idempotency ---------------------------------------------------------------------------


def test_same_idempotency_key_and_body_returns_the_first_request(requester_api, submit):
    key = {"Idempotency-Key": "build-1234"}
    first = submit(requester_api, headers=key)

    replay = submit(requester_api, headers=key)

    assert (first.status_code, replay.status_code) == (202, 200)
    assert replay.json()["id"] == first.json()["id"]
    assert replay["Location"] == first["Location"]
    assert ResourceRequest.objects.count() == 1
    assert RequestEvent.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_409_saying_why(requester_api, submit):
    submit(requester_api, headers={"Idempotency-Key": "build-1234"})

    response = submit(requester_api, name="other", headers={"Idempotency-Key": "build-1234"})

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "idempotency_key_reused"
    assert "different body" in error["message"]
    assert ResourceRequest.objects.count() == 1


def test_an_idempotency_key_belongs_to_one_user(requester_api, teammate_api, submit):
    submit(requester_api, headers={"Idempotency-Key": "build-1234"})

    response = submit(teammate_api, name="tess-bucket",
                      headers={"Idempotency-Key": "build-1234"})

    assert response.status_code == 202
    assert ResourceRequest.objects.count() == 2


def test_without_an_idempotency_key_a_second_submit_is_not_a_replay(requester_api, submit):
    submit(requester_api)

    response = submit(requester_api)

    assert response.status_code == 409
    assert error_of(response)["code"] == "request_in_flight"


# -- who is calling ------------------------------------------------------------------------


def test_a_token_in_the_authorization_header_identifies_the_caller(requester_api, submit):
    submit(requester_api)

    response = requester_api.get(REQUESTS)

    assert response.status_code == 200
    assert response.json()["results"][0]["requested_by"] == "rita"


def test_no_credentials_is_401_asking_for_a_token(anonymous_api):
    response = anonymous_api.get(REQUESTS)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert error_of(response)["code"] == "not_authenticated"


def test_an_unknown_token_is_401_in_the_error_shape(anonymous_api):
    anonymous_api.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    response = anonymous_api.get(REQUESTS)

    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"


def test_a_logged_in_session_can_list_and_submit(requester, submit):
    client = APIClient()
    assert client.login(username="rita", password="rita-password")

    submitted = submit(client)
    listed = client.get(REQUESTS)

    assert submitted.status_code == 202
    assert names(listed) == ["orders"]


def test_a_session_submit_without_the_csrf_token_is_refused(requester, submit):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="rita", password="rita-password")

    response = submit(client)

    assert response.status_code == 403
    assert "CSRF" in error_of(response)["message"]
    assert ResourceRequest.objects.count() == 0
