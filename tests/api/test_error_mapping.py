"""KRP's errors reach an API caller by their class and the fields they carry, never by what
their message text happens to look like."""

from __future__ import annotations

import pickle

import pytest

from krp_project.celery import app
from provisioning.api.errors import krp_exception_handler
from provisioning.errors import (
    Conflict,
    InvalidRequest,
    KrpError,
    NotAllowed,
    NotFound,
    PermanentCloudError,
)


def answer(exc: Exception):
    response = krp_exception_handler(exc, {})
    return response.status_code, response.data["error"]


@pytest.mark.parametrize(("error", "status"), [
    (InvalidRequest.about("name", "too short"), 400),
    (NotAllowed("approving needs a permission"), 403),
    (NotFound("request 42 does not exist"), 404),
    (Conflict("s3_bucket alpha/logs already exists"), 409),
    (PermanentCloudError("AccessDenied", "AccessDenied"), 503),
])
def test_each_error_class_has_its_own_status(error, status):
    assert answer(error)[0] == status


def test_the_status_follows_the_class_not_the_code():
    # A refusal that happens to be coded "not_found" is still a refusal, not a 404...
    assert answer(Conflict("request 42 is queued", "not_found"))[0] == 409
    # ...and a NotFound keeps its 404 whatever code it carries.
    assert answer(NotFound("no such request", "unknown_request"))[0] == 404


def test_fields_come_from_the_error_not_from_parsing_its_message():
    status, error = answer(InvalidRequest("name: looks like a field but is not one"))

    assert status == 400
    assert error["fields"] == {}


def test_a_problem_whose_text_has_a_semicolon_stays_whole_under_its_field():
    error = InvalidRequest.about("team", "you belong to data, platform; say which",
                                 "invalid_team")

    status, body = answer(error)

    assert body == {"code": "invalid_team",
                    "message": "team: you belong to data, platform; say which",
                    "fields": {"team": ["you belong to data, platform; say which"]}}


def test_several_problems_are_listed_in_the_message_and_each_under_its_field():
    error = InvalidRequest.about_each(
        {"spec.versioning": ["Input should be a valid boolean"],
         "spec.colour": ["Extra inputs are not permitted"]},
        "invalid_spec",
    )

    assert error.message == ("spec.versioning: Input should be a valid boolean; "
                             "spec.colour: Extra inputs are not permitted")
    assert answer(error)[1]["fields"] == {
        "spec.versioning": ["Input should be a valid boolean"],
        "spec.colour": ["Extra inputs are not permitted"],
    }


def test_an_error_stored_by_celery_comes_back_with_its_code_and_fields():
    error = InvalidRequest.about("deadline", "must be in the future", "invalid_deadline")

    for rebuilt in (pickle.loads(pickle.dumps(error)),
                    app.backend.exception_to_python(
                        {"exc_type": "InvalidRequest", "exc_message": list(error.args),
                         "exc_module": "provisioning.errors"})):
        assert isinstance(rebuilt, InvalidRequest)
        assert (rebuilt.code, rebuilt.message, rebuilt.fields) == (
            "invalid_deadline", "deadline: must be in the future",
            {"deadline": ["must be in the future"]})


def test_a_plain_error_keeps_its_class_code():
    rebuilt = pickle.loads(pickle.dumps(KrpError("something broke")))

    assert (rebuilt.code, rebuilt.message, rebuilt.fields) == ("krp_error", "something broke", {})
