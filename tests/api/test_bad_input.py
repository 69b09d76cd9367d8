"""Bad input is a 400 (never a 500) whose body names each offending field, in the API's one
error shape, and nothing is recorded for it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from provisioning.models import RequestEvent, ResourceRequest
from tests.api.conftest import BODY, REQUESTS, error_of

pytestmark = pytest.mark.django_db

PAST = (timezone.now() - timedelta(days=1)).isoformat()
# The smallest valid spec of each type, and a field of it given a value of the wrong type.
SPECS = {
    "s3_bucket": ({}, "versioning", "yes"),
    "sqs_queue": ({}, "fifo", "yes"),
    "sns_topic": ({}, "fifo", "yes"),
    "dynamodb_table": ({"partition_key": {"name": "id", "type": "S"}},
                       "point_in_time_recovery", "yes"),
    "iam_role": ({"trusted_service": "lambda.amazonaws.com"},
                 "max_session_duration_seconds", "long"),
}


@pytest.fixture(autouse=True)
def nothing_recorded(db):
    """Whatever a test here sends, no request and no event is recorded."""
    yield
    assert ResourceRequest.objects.count() == 0
    assert RequestEvent.objects.count() == 0


def refusal(response, code: str) -> dict:
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == code
    return error


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        pytest.param({"environment": "staging"}, "unknown_environment", "environment",
                     id="unknown environment"),
        pytest.param({"resource_type": "ec2_instance"}, "unknown_resource_type",
                     "resource_type", id="unknown resource type"),
        pytest.param({"name": "Orders_2"}, "invalid_name", "name", id="name not valid"),
        pytest.param({"name": "a" * 41}, "invalid_name", "name", id="name too long"),
        pytest.param({"spec": {"versioning": "yes"}}, "invalid_spec", "spec.versioning",
                     id="spec field of the wrong type"),
        pytest.param({"spec": {"colour": "red"}}, "invalid_spec", "spec.colour",
                     id="unknown spec field"),
        pytest.param({"tags": {"krp:x": "1"}}, "invalid_tags", "tags.krp:x",
                     id="reserved tag key"),
        pytest.param({"deadline": PAST}, "invalid_deadline", "deadline",
                     id="deadline in the past"),
        pytest.param({"deadline": "tomorrow"}, "invalid_request", "deadline",
                     id="deadline not a date"),
        pytest.param({"action": "rename"}, "invalid_request", "action", id="unknown action"),
        pytest.param({"colour": "red"}, "invalid_request", "colour",
                     id="unknown top-level field"),
        pytest.param({"spec": ["versioning"]}, "invalid_request", "spec", id="spec as a list"),
        pytest.param({"tags": "team=platform"}, "invalid_request", "tags",
                     id="tags as a string"),
        pytest.param({"tags": {"owner": {"name": "rita"}}}, "invalid_request", "tags.owner",
                     id="tag value an object"),
        pytest.param({"environment": ["alpha"]}, "invalid_request", "environment",
                     id="environment as a list"),
        pytest.param({"not_before": 12}, "invalid_request", "not_before",
                     id="not_before as a number"),
    ],
)
def test_bad_field_is_400_naming_exactly_that_field(requester_api, submit, fields, code, field):
    error = refusal(submit(requester_api, **fields), code)

    assert list(error["fields"]) == [field]
    assert error["fields"][field] and all(error["fields"][field])
    assert field in error["message"]


def test_each_offending_spec_field_is_named(requester_api, submit):
    error = refusal(submit(requester_api, spec={"versioning": "yes", "colour": "red"}),
                    "invalid_spec")

    assert set(error["fields"]) == {"spec.versioning", "spec.colour"}


@pytest.mark.parametrize("resource_type", sorted(SPECS))
def test_every_type_names_a_spec_field_of_the_wrong_type(requester_api, submit, resource_type):
    spec, field, wrong = SPECS[resource_type]

    error = refusal(submit(requester_api, resource_type=resource_type,
                           spec={**spec, field: wrong}), "invalid_spec")

    assert list(error["fields"]) == [f"spec.{field}"]


@pytest.mark.parametrize("resource_type", sorted(SPECS))
def test_every_type_names_an_unknown_spec_field(requester_api, submit, resource_type):
    spec, _, _ = SPECS[resource_type]

    error = refusal(submit(requester_api, resource_type=resource_type,
                           spec={**spec, "colour": "red"}), "invalid_spec")

    assert list(error["fields"]) == ["spec.colour"]


def test_missing_required_fields_are_each_named(requester_api):
    response = requester_api.post(REQUESTS, {"spec": {}}, format="json")

    error = refusal(response, "invalid_request")
    assert set(error["fields"]) == {"environment", "resource_type", "name"}


def test_body_that_is_not_json_is_400(requester_api):
    response = requester_api.post(REQUESTS, '{"environment": "alpha",',
                                  content_type="application/json")

    error = refusal(response, "parse_error")
    assert "not valid JSON" in error["message"]


def test_empty_body_is_400_naming_the_required_fields(requester_api):
    response = requester_api.post(REQUESTS, "", content_type="application/json")

    error = refusal(response, "invalid_request")
    assert set(error["fields"]) == {"environment", "resource_type", "name"}


def test_blank_body_is_400_asking_for_a_json_object(requester_api):
    response = requester_api.post(REQUESTS, "   \n", content_type="application/json")

    assert "empty" in refusal(response, "parse_error")["message"]


@pytest.mark.parametrize("document", ["[]", '"orders"', "42", "null"])
def test_body_that_is_json_but_not_an_object_is_400(requester_api, document):
    response = requester_api.post(REQUESTS, document, content_type="application/json")

    assert list(refusal(response, "invalid_request")["fields"]) == ["body"]


def test_body_over_the_size_limit_is_400_saying_the_limit(requester_api):
    limit = settings.KRP.api_max_body_bytes
    body = json.dumps({**BODY, "tags": {"note": "x" * limit}})

    response = requester_api.post(REQUESTS, body, content_type="application/json")

    error = refusal(response, "body_too_large")
    assert str(limit) in error["message"]


def test_list_filter_with_an_unknown_status_is_400_naming_it(requester_api):
    error = refusal(requester_api.get(REQUESTS, {"status": "exploded"}), "invalid_request")

    assert list(error["fields"]) == ["status"]


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('{"environment": "alpha", "resource_type": "iam_role", "name": "nan-role", '
         '"spec": {"trusted_service": "lambda.amazonaws.com", '
         '"inline_policy": {"Version": NaN}}}', "NaN is not a JSON number"),
        ('{"environment": "alpha", "resource_type": "s3_bucket", "name": "nul-tag", '
         '"tags": {"own\\u0000er": "x"}}', "NUL character"),
    ],
    ids=["deeply-nested", "nan", "nul"],
)
def test_bodies_a_database_cannot_store_are_400_not_500(requester_api, body, phrase):
    response = requester_api.post(REQUESTS, body, content_type="application/json")

    assert phrase in refusal(response, "parse_error")["message"]


def test_an_idempotency_key_over_255_characters_is_400(requester_api):
    response = requester_api.post(
        REQUESTS, {"environment": "alpha", "resource_type": "s3_bucket", "name": "long-key"},
        format="json", HTTP_IDEMPOTENCY_KEY="k" * 256,
    )

    assert refusal(response, "invalid_idempotency_key")


def test_several_wrong_fields_are_all_named_in_one_answer(requester_api, submit):
    response = submit(requester_api, environment="staging", name="Orders_2",
                      spec={"versioning": "yes", "lifecycle_expiration_days": 0})

    error = refusal(response, "invalid_request")
    assert set(error["fields"]) == {"environment", "name", "spec.versioning",
                                    "spec.lifecycle_expiration_days"}
    assert "known: alpha, prod" in error["fields"]["environment"][0]
    for field in error["fields"]:
        assert field in error["message"]


def test_wrong_shapes_and_wrong_meanings_are_named_together(requester_api, submit):
    response = submit(requester_api, environment="staging", deadline="tomorrow",
                      colour="red", tags={"krp:team": "data"},
                      spec={"encryption": "rot13"})

    error = refusal(response, "invalid_request")
    assert set(error["fields"]) == {"environment", "deadline", "colour", "tags.krp:team",
                                    "spec.encryption"}


def test_problems_of_one_kind_keep_their_code(requester_api, submit):
    response = submit(requester_api, spec={"versioning": "yes", "colour": "red"},
                      resource_type="s3_bucket")

    assert refusal(response, "invalid_spec")


def test_a_nested_spec_error_names_its_path(requester_api, submit):
    response = submit(requester_api, resource_type="sns_topic", name="order-updates",
                      spec={"subscriptions": [{"queue": "jobs"}, {"queue": "Bad_Queue"}]})

    error = refusal(response, "invalid_spec")
    assert list(error["fields"]) == ["spec.subscriptions[1].queue"]
    assert error["fields"]["spec.subscriptions[1].queue"] == [
        "use lowercase letters, digits and dashes, starting with a letter and not ending "
        "with a dash"]
