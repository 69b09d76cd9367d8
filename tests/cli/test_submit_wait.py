"""`krp submit --wait`: follows the request through the real alpha worker to its end,
printing each status change; the exit status says whether it succeeded."""

import json
import uuid

import pytest

from provisioning.models import RequestStatus, ResourceRequest
from tests.cli import assert_refused, krp, run_krp

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("alpha_worker")]


def test_submit_wait_prints_each_status_change_until_it_succeeds(requester, cloud):
    bucket = f"cli-wait-{uuid.uuid4().hex[:8]}"

    ran = krp("submit", "--user", "rita", "--env", "alpha", "--type", "s3_bucket",
              "--name", bucket, "--wait", "--timeout", "60")

    request = ResourceRequest.objects.get(name=bucket)
    assert request.status == RequestStatus.SUCCEEDED
    first, *changes = ran.stdout.splitlines()
    assert first == f"request {request.pk} recorded: create s3_bucket alpha/{bucket} is queued"
    assert [line.split(" (")[0].split(" ", 1)[1] for line in changes] == [
        "- -> queued", "queued -> running", "running -> succeeded"]
    names = [b["Name"] for b in cloud.client("alpha", "s3").list_buckets()["Buckets"]]
    assert request.physical_name in names


def test_submit_wait_json_prints_progress_on_stderr_and_the_final_document(requester):
    ran = krp("submit", "--user", "rita", "--env", "alpha", "--type", "sqs_queue",
              "--name", f"cli-wait-{uuid.uuid4().hex[:8]}", "--wait", "--timeout", "60",
              "--json")

    document = json.loads(ran.stdout)
    assert document["status"] == "succeeded"
    assert document["outputs"]["arn"].startswith("arn:aws:sqs:ap-northeast-2:111111111111:")
    assert "running -> succeeded" in ran.stderr


def test_submit_wait_on_a_request_that_fails_exits_non_zero_with_the_error(requester):
    spec = {"trusted_service": "lambda.amazonaws.com",
            "managed_policy_arns": ["arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"]}

    role = f"cli-wait-{uuid.uuid4().hex[:8]}"

    done = run_krp("submit", "--user", "rita", "--env", "alpha", "--type", "iam_role",
                   "--name", role, "--spec", json.dumps(spec), "--wait", "--timeout", "60")

    request = ResourceRequest.objects.get(name=role)
    assert_refused(done, f"request {request.pk} ended failed: ", "NoSuchPolicyAnywhere")
    assert "running -> failed" in done.stdout
    assert request.error_code == "NoSuchEntity"
