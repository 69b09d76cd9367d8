"""Bad arguments to `krp submit` and `krp status` are refused with a message naming them,
never a traceback, and record nothing; `--spec null` is refused as the API refuses it."""

from __future__ import annotations

import pytest

from provisioning.models import ResourceRequest
from tests.cli import assert_refused, krp_refused, run_krp

pytestmark = pytest.mark.django_db

SUBMIT = ("submit", "--user", "rita", "--env", "alpha", "--type", "s3_bucket")


@pytest.fixture
def binary_file(tmp_path):
    path = tmp_path / "spec.bin"
    path.write_bytes(bytes(range(256)) * 4)
    return path


@pytest.mark.parametrize("arguments, message", [
    (("--name", "orders", "--idempotency-key", "k" * 300),
     "invalid_idempotency_key: idempotency_key: at most 255 characters"),
    (("--name", "orders", "--spec", '{"versioning": "\\u0000"}'),
     "invalid_spec: spec: contains a NUL character"),
    (("--name", "ord\x00ers"), "name: contains a NUL character"),
    (("--name", "orders", "--tag", "owner=a\x00b"), "tags: contains a NUL character"),
    (("--name", "orders", "--not-before", "2030-02-30T09:00:00Z"),
     "--not-before: '2030-02-30T09:00:00Z' is not an ISO 8601 time with a zone"),
    (("--name", "orders", "--deadline", "2030-13-01T09:00:00+09:00"),
     "--deadline: '2030-13-01T09:00:00+09:00' is not an ISO 8601 time with a zone"),
    (("--name", "orders", "--spec", "null"), "--spec: must be a JSON object, not null"),
    (("--name", "orders", "--spec", "[1, 2]"), "--spec: must be a JSON object, not [1, 2]"),
    (("--name", "orders", "--spec", '{"versioning": true, "versioning": false}'),
     "--spec: the key 'versioning' appears more than once"),
])
def test_submit_with_a_bad_argument_is_refused_naming_it(requester, arguments, message):
    refused = krp_refused(*SUBMIT, *arguments)

    assert message in refused.error
    assert not ResourceRequest.objects.exists()


def test_submit_with_a_binary_spec_file_is_refused(requester, binary_file):
    refused = krp_refused(*SUBMIT, "--name", "orders", "--spec", f"@{binary_file}")

    assert refused.error == f"--spec: {binary_file} is not a UTF-8 text file"


def test_a_user_name_with_nul_is_no_user(requester):
    refused = krp_refused("status", "--user", "ri\x00ta")

    assert refused.error.startswith("--user: no user called")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("arguments, message", [
    ((*SUBMIT, "--name", "orders", "--idempotency-key", "k" * 300),
     "at most 255 characters"),
    ((*SUBMIT, "--name", "orders", "--not-before", "2030-02-30T09:00:00Z"),
     "is not an ISO 8601 time with a zone"),
    ((*SUBMIT, "--name", "orders", "--spec", "null"), "--spec: must be a JSON object"),
    (("status", "--user", "rita", "--limit", "9" * 30), "--limit: from 1 to 1000"),
])
def test_a_process_given_a_bad_argument_exits_non_zero_without_a_traceback(
    requester, arguments, message
):
    done = run_krp(*arguments)

    assert_refused(done, message)
    assert not ResourceRequest.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_process_given_a_binary_spec_file_exits_without_a_traceback(requester, binary_file):
    done = run_krp(*SUBMIT, "--name", "orders", "--spec", f"@{binary_file}")

    assert_refused(done, "is not a UTF-8 text file")
