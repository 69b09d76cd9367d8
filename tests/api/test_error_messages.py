"""An error speaks the caller's language: it says the rule that was broken, in words and
JSON, never a regular expression, a Python class or a Python repr of a value."""

from __future__ import annotations

import pytest

from tests.api.conftest import REQUESTS, error_of

pytestmark = pytest.mark.django_db

TABLE_SPEC = {"partition_key": {"name": "pk", "type": "S"}}
ROLE_SPEC = {"trusted_service": "lambda.amazonaws.com"}
# Fragments of what Python or pydantic would show: a repr, a class, a pattern.
FRAGMENTS = ["(name=", "^", "$'", "[a-z", "\\d", "Value error,", "Assertion failed,",
             "instance of", "KeyAttribute", "Spec", "<class", "dictionary", "['", "{'"]

BAD_SPECS = {
    "s3_bucket": [{"versioning": "yes", "encryption": "rot13"},
                  {"lifecycle_expiration_days": 0, "colour": "red"}],
    "sqs_queue": [{"dead_letter_queue": 5}, {"dead_letter_queue": {"max_receive_count": 0}},
                  {"content_based_deduplication": True, "delay_seconds": "1"}],
    "sns_topic": [{"subscriptions": [{"queue": "Bad_Queue"}], "display_name": 3},
                  {"subscriptions": "orders"},
                  {"subscriptions": [{"queue": "orders"}, {"queue": "orders"}]}],
    "dynamodb_table": [{"partition_key": "pk"},
                       {"partition_key": {"name": "", "type": "X"}, "sort_key": []},
                       {**TABLE_SPEC, "billing_mode": "PROVISIONED"}],
    "iam_role": [{"trusted_service": "lambda", "managed_policy_arns": ["ReadOnly"],
                  "description": "emoji \U0001f600"},
                 {**ROLE_SPEC, "inline_policy": "s3:*"},
                 {**ROLE_SPEC, "inline_policy": {"Version": "2012-10-17", "Foo": 1}},
                 {**ROLE_SPEC, "inline_policy": {"Version": "2012-10-17", "Statement": [
                     {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "x"}]}}],
}
CASES = [(kind, spec) for kind, specs in BAD_SPECS.items() for spec in specs]


def assert_plain(error: dict) -> None:
    texts = [error["message"], *(p for problems in error["fields"].values() for p in problems)]
    for text in texts:
        for fragment in FRAGMENTS:
            assert fragment not in text, f"{fragment!r} in {text!r}"


@pytest.mark.parametrize(("resource_type", "spec"), CASES,
                         ids=[f"{kind}-{n}" for n, (kind, _) in enumerate(CASES)])
def test_a_bad_spec_is_told_in_plain_words(requester_api, submit, resource_type, spec):
    response = submit(requester_api, resource_type=resource_type, name="plain-words",
                      spec=spec)

    assert response.status_code == 400, response.content
    assert_plain(error_of(response))


@pytest.mark.parametrize("body", [
    {"environment": ["alpha"], "resource_type": 3, "name": {"n": 1}, "spec": [1],
     "tags": {"owner": {"name": "x"}}, "deadline": "tomorrow", "action": "rename"},
    {"environment": "staging", "resource_type": "ec2", "name": "Bad_Name", "colour": 1},
], ids=["wrong shapes", "wrong values"])
def test_a_bad_body_is_told_in_plain_words(requester_api, body):
    response = requester_api.post(REQUESTS, body, format="json")

    assert response.status_code == 400
    assert_plain(error_of(response))


def test_changing_a_key_fixed_at_creation_shows_both_keys_as_json(requester, requester_api,
                                                                  resource_of, submit):
    resource_of(requester, "sessions", resource_type="dynamodb_table", spec=TABLE_SPEC)

    response = submit(requester_api, resource_type="dynamodb_table", name="sessions",
                      action="update", spec={"partition_key": {"name": "id", "type": "N"}})

    assert response.status_code == 400
    error = error_of(response)
    assert error["fields"] == {"spec.partition_key": [
        'cannot change after creation (is {"name": "pk", "type": "S"}, asked '
        '{"name": "id", "type": "N"})']}
    assert_plain(error)


@pytest.mark.parametrize("query", [{"environment": "staging"}, {"status": "bogus"},
                                   {"page_size": "many"}, {"page": "99"},
                                   {"cursor": "bogus"}])
def test_a_bad_list_query_is_told_in_plain_words(requester_api, query):
    response = requester_api.get(REQUESTS, query)

    assert response.status_code == 400
    assert_plain(error_of(response))
