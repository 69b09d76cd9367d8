"""`krp submit / status / approve / cancel / retry`: the same services as the API, from a
shell, acting as the user --user (or KRP_USER) names.

Here nothing runs the jobs (no worker; in the test process, the after-commit publish never
fires): requests stay where the command left them. --wait is in test_submit_wait.py.
"""

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import RequestStatus, ResourceRequest
from provisioning.services import execute_request
from tests.cli import assert_refused, krp, krp_refused, run_krp
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

DOCUMENT_KEYS = {
    "id", "url", "status", "environment", "resource_type", "name", "action", "spec", "tags",
    "team", "requested_by", "outputs", "error", "attempts", "task_id", "task_status",
    "resource", "stack", "stack_member", "not_before", "deadline", "ttl", "expires_at",
    "created_at",
    "queued_at", "started_at", "finished_at", "events", "left_behind", "plan",
}
ROW_KEYS = {"id", "status", "environment", "resource_type", "name", "action", "team",
            "attempts", "created_at"}


def name() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


# submit


def test_submit_prints_the_request_id_and_its_status(requester):
    bucket = name()

    ran = krp("submit", "--user", "rita", "--env", "alpha", "--type", "s3_bucket",
              "--name", bucket, "--spec", '{"versioning": true}', "--tag", "owner=payments")

    request = ResourceRequest.objects.get(name=bucket)
    assert ran.stdout.strip() == (
        f"request {request.pk} recorded: create s3_bucket alpha/{bucket} is queued"
    )
    assert (request.requested_by, request.spec["versioning"], request.tags) == (
        requester, True, {"owner": "payments"})


def test_submit_to_an_environment_that_needs_approval_says_it_waits(requester):
    ran = krp("submit", "--user", "rita", "--env", "prod", "--type", "sqs_queue",
              "--name", name())

    assert ran.stdout.rstrip().endswith("is pending_approval")


def test_submit_takes_the_user_from_krp_user(requester, monkeypatch):
    monkeypatch.setenv("KRP_USER", "rita")

    ran = krp("submit", "--env", "alpha", "--type", "s3_bucket", "--name", name())

    assert "recorded" in ran.stdout


def test_submit_reads_the_spec_from_a_file(requester, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text('{"fifo": true}')
    queue = name()

    krp("submit", "--user", "rita", "--env", "alpha", "--type", "sqs_queue", "--name", queue,
        "--spec", f"@{spec}")

    assert ResourceRequest.objects.get(name=queue).spec["fifo"] is True


def test_submit_json_is_the_request_document(requester):
    ran = krp("submit", "--user", "rita", "--env", "alpha", "--type", "s3_bucket",
              "--name", name(), "--json")

    document = json.loads(ran.stdout)
    assert set(document) == DOCUMENT_KEYS
    assert document["status"] == "queued"
    assert [(e["from_status"], e["to_status"]) for e in document["events"]] == [("", "queued")]


def test_submitting_again_with_the_same_idempotency_key_returns_the_first(requester):
    args = ("submit", "--user", "rita", "--env", "alpha", "--type", "s3_bucket",
            "--name", name(), "--idempotency-key", "once")
    first = krp(*args)

    again = krp(*args)

    request = ResourceRequest.objects.get(idempotency_key="once")
    assert f"request {request.pk} recorded" in first.stdout
    assert f"request {request.pk} already recorded" in again.stdout


BAD_INPUT = [
    ("--env", "nowhere", "environment: 'nowhere' is not a known environment"),
    ("--type", "ftp_server", "resource_type: 'ftp_server' is not a known type"),
    ("--name", "Bad_Name", "name: 'Bad_Name' is not valid for s3_bucket"),
    ("--spec", "{versioning: true}", "--spec: not valid JSON"),
    ("--spec", '{"versioning": "sometimes"}', "spec.versioning: "),
    ("--tag", "owner", "--tag 'owner': use KEY=VALUE"),
    ("--tag", "krp:owner=me", "tags.krp:owner: keys starting with krp: or aws: are reserved"),
    ("--team", "elsewhere", "team: you are not a member of 'elsewhere'"),
    ("--not-before", "tomorrow", "--not-before: 'tomorrow' is not an ISO 8601 time"),
    ("--deadline", "2001-01-01T00:00:00Z", "deadline: must be in the future"),
    ("--action", "explode", "--action: invalid choice: 'explode'"),
    ("--user", "nobody", "--user: no user called 'nobody'"),
]


@pytest.mark.parametrize(("option", "value", "message"), BAD_INPUT,
                         ids=[f"{option} {value}" for option, value, _ in BAD_INPUT])
def test_submit_with_bad_input_is_refused_naming_the_field(requester, option, value, message):
    given = {"--user": "rita", "--env": "alpha", "--type": "s3_bucket", "--name": name(),
             option: value}

    refused = krp_refused("submit", *(part for pair in given.items() for part in pair))

    assert message in refused.error
    assert not ResourceRequest.objects.filter(requested_by=requester).exists()


def test_submit_without_saying_who_acts_is_refused(requester):
    refused = krp_refused("submit", "--env", "alpha", "--type", "s3_bucket", "--name", name())

    assert refused.error == (
        "say who you act as: set KRP_USER=<username> or pass --user <username>")


def test_submit_without_a_required_option_is_refused_naming_it(requester):
    refused = krp_refused("submit", "--user", "rita", "--type", "s3_bucket", "--name", name())

    assert "the following arguments are required: --env" in refused.error


def test_submit_with_a_spec_file_that_is_not_there_is_refused(requester, tmp_path):
    refused = krp_refused("submit", "--user", "rita", "--env", "alpha", "--type", "s3_bucket",
                          "--name", name(), "--spec", f"@{tmp_path / 'missing.json'}")

    assert "--spec: cannot read" in refused.error
    assert "missing.json" in refused.error


# status


def test_status_lists_recent_requests_newest_first(requester):
    older, newer = submit(requester, name()), submit(requester, name(), environment="prod")

    ran = krp("status", "--user", "rita")

    header, *rows = ran.stdout.splitlines()
    assert header.split() == ["id", "status", "env", "type", "action", "name"]
    assert [row.split() for row in rows[:2]] == [
        [str(newer.pk), "pending_approval", "prod", "s3_bucket", "create", newer.name],
        [str(older.pk), "queued", "alpha", "s3_bucket", "create", older.name],
    ]


def test_status_table_filters_by_environment_status_and_limit(requester):
    alpha = [submit(requester, name()) for _ in range(3)]
    prod = submit(requester, name(), environment="prod")

    assert str(prod.pk) not in krp("status", "--user", "rita", "--env", "alpha").stdout
    assert str(prod.pk) in krp("status", "--user", "rita", "--status", "pending_approval").stdout
    rows = krp("status", "--user", "rita", "--env", "alpha", "--limit", "2").stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == [str(alpha[2].pk), str(alpha[1].pk)]


def test_status_table_json_is_a_list_of_rows(requester):
    request = submit(requester, name())

    [row] = json.loads(krp("status", "--user", "rita", "--json", "--limit", "1").stdout)

    assert set(row) == ROW_KEYS
    assert (row["id"], row["status"], row["team"]) == (str(request.pk), "queued", "platform")


def test_status_of_one_request_shows_its_fields_and_events(requester, operator):
    request = submit(requester, name(), environment="prod")
    krp("approve", str(request.pk), "--user", "otto")

    ran = krp("status", str(request.pk), "--user", "rita")

    assert f"id: {request.pk}" in ran.stdout
    assert "status: queued" in ran.stdout
    assert "requested_by: rita" in ran.stdout
    events = ran.stdout.split("events:\n", 1)[1].splitlines()
    assert events[0].endswith(" - -> pending_approval (rita) submitted; prod requires approval")
    assert " pending_approval -> pending_approval (worker) planned: will create " in events[1]
    assert events[2].endswith(" pending_approval -> queued (otto) approved")


def test_status_of_a_failed_request_shows_its_error(requester, sandbox):
    request = submit(
        requester, name(), resource_type="iam_role",
        spec={"trusted_service": "lambda.amazonaws.com",
              "managed_policy_arns": ["arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"]},
    )
    execute_request(request_id=str(request.pk), task_id=request.task_id)

    ran = krp("status", str(request.pk), "--user", "rita")

    assert "status: failed" in ran.stdout
    assert "error: NoSuchEntity: " in ran.stdout
    assert "running -> failed" in ran.stdout


def test_status_json_of_one_request_is_the_request_document(requester):
    request = submit(requester, name())

    document = json.loads(krp("status", str(request.pk), "--user", "rita", "--json").stdout)

    assert set(document) == DOCUMENT_KEYS
    assert document["id"] == str(request.pk)
    assert document["events"][0]["to_status"] == "queued"


@pytest.mark.parametrize("request_id", [str(uuid.UUID(int=7)), "not-a-request-id"])
def test_status_of_an_unknown_request_is_refused(requester, request_id):
    refused = krp_refused("status", request_id, "--user", "rita")

    assert refused.error == f"no request {request_id}"


@pytest.mark.parametrize("limit", ["-1", "0", "1001", "99999999999999999999999"])
def test_status_with_a_limit_out_of_range_is_refused(requester, limit):
    refused = krp_refused("status", "--user", "rita", "--limit", limit)

    assert refused.error == "--limit: from 1 to 1000"


# approve, cancel, retry


def test_approve_lets_a_waiting_request_go_ahead(requester, operator):
    request = submit(requester, name(), environment="prod")

    ran = krp("approve", str(request.pk), "--user", "otto")

    assert ran.stdout.strip() == f"request {request.pk} approved: now queued"
    request.refresh_from_db()
    assert request.status == RequestStatus.QUEUED


def test_approve_json_is_the_request_document(requester, operator):
    request = submit(requester, name(), environment="prod")

    document = json.loads(krp("approve", str(request.pk), "--user", "otto", "--json").stdout)

    assert set(document) == DOCUMENT_KEYS
    assert document["status"] == "queued"


def test_approving_your_own_request_is_refused_with_the_reason(operator):
    request = submit(operator, name(), environment="prod")

    refused = krp_refused("approve", str(request.pk), "--user", "otto")

    assert refused.error == "self_approval: a requester cannot approve their own request"
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING_APPROVAL


def test_approving_without_the_permission_is_refused(requester, operator):
    request = submit(operator, name(), environment="prod")

    refused = krp_refused("approve", str(request.pk), "--user", "rita")

    assert refused.error.startswith("not_allowed: approving requests needs the "
                                    "approve_resourcerequest permission")


def test_approving_a_request_that_does_not_wait_for_approval_is_refused(requester, operator):
    request = submit(requester, name())

    refused = krp_refused("approve", str(request.pk), "--user", "otto")

    assert refused.error == (f"invalid_transition: request {request.pk} is queued; cannot "
                             "approve it (allowed only when pending_approval)")


def test_cancel_withdraws_a_request_that_has_not_started(requester):
    request = submit(requester, name())

    ran = krp("cancel", str(request.pk), "--user", "rita")

    assert ran.stdout.strip() == f"request {request.pk} cancelled: now cancelled"


def test_cancelling_a_succeeded_request_is_refused_with_the_reason(requester, sandbox):
    request = submit(requester, name())
    execute_request(request_id=str(request.pk), task_id=request.task_id)

    refused = krp_refused("cancel", str(request.pk), "--user", "rita")

    assert refused.error == (f"invalid_transition: request {request.pk} is succeeded; cannot "
                             "cancel it (allowed only when pending_approval or queued)")


def test_retry_queues_a_cancelled_request_again(requester):
    request = submit(requester, name())
    krp("cancel", str(request.pk), "--user", "rita")

    ran = krp("retry", str(request.pk), "--user", "rita")

    assert ran.stdout.strip() == f"request {request.pk} queued again: now queued"


def test_retrying_a_request_that_has_not_ended_is_refused_with_the_reason(requester):
    request = submit(requester, name())

    refused = krp_refused("retry", str(request.pk), "--user", "rita")

    assert refused.error.startswith(f"invalid_transition: request {request.pk} is queued; "
                                    "cannot retry it")


@pytest.mark.parametrize("subcommand", ["approve", "cancel", "retry"])
def test_a_transition_of_an_unknown_request_or_without_a_user_is_refused(subcommand, requester):
    request = submit(requester, name())

    assert krp_refused(subcommand, "not-a-request-id", "--user", "rita").error == (
        "no request not-a-request-id")
    assert krp_refused(subcommand, str(request.pk)).error == (
        "say who you act as: set KRP_USER=<username> or pass --user <username>")


# the same refusals from a real `manage.py krp` process


def test_a_process_refused_for_an_unknown_user_exits_non_zero_with_the_message():
    done = run_krp("submit", "--user", "nobody", "--env", "alpha", "--type", "s3_bucket",
                   "--name", name())

    assert_refused(done, "--user: no user called 'nobody'")


@pytest.mark.django_db(transaction=True)
def test_a_process_asked_for_an_unknown_request_exits_non_zero_with_the_message(requester):
    missing = str(uuid.uuid4())

    assert_refused(run_krp("status", missing, "--user", "rita"), f"no request {missing}")
    assert_refused(run_krp("cancel", "not-a-request-id", "--user", "rita"),
                   "no request not-a-request-id")


@pytest.mark.django_db(transaction=True)
def test_a_process_refused_for_bad_input_names_the_field_and_records_nothing(requester):
    done = run_krp("submit", "--user", "rita", "--env", "alpha", "--type", "s3_bucket",
                   "--name", "Bad_Name", "--tag", "owner=payments")

    assert_refused(done, "invalid_name: name: 'Bad_Name' is not valid for s3_bucket")
    assert not ResourceRequest.objects.filter(requested_by=requester).exists()


@pytest.mark.django_db(transaction=True)
def test_a_process_refused_a_transition_exits_non_zero_with_the_reason(operator):
    request = submit(operator, name(), environment="prod")

    done = run_krp("approve", str(request.pk), "--user", "otto")

    assert_refused(done, "self_approval: a requester cannot approve their own request")


@pytest.mark.django_db(transaction=True)
def test_a_process_submits_and_reports_the_request_as_json(requester):
    done = run_krp("submit", "--user", "rita", "--env", "prod", "--type", "s3_bucket",
                   "--name", name(), "--json", "--deadline",
                   (timezone.now() + timedelta(hours=1)).isoformat())

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document) == DOCUMENT_KEYS
    assert ResourceRequest.objects.get(pk=document["id"]).status == "pending_approval"
