"""`krp reconcile`: report missing, drifted and orphaned resources; --fix repairs drift and
marks missing ones; --delete-orphans deletes orphans; non-zero while findings are left.

The sandbox is shared by the whole session and other tests leave KRP-tagged resources in
alpha's account, so in alpha these tests look only at the ARNs they made and never delete
orphans (whatever other tests left). The exit status as a whole, and --delete-orphans, are
proved in "gamma", an environment of its own account that only this file uses, by
`manage.py krp` processes whose KRP_ENVIRONMENTS define it.
"""

import json
import os
import uuid

import pytest

from containers.settings import KrpSettings
from provisioning.cloud import CloudClients
from provisioning.models import Resource, ResourceStatus
from provisioning.services import execute_request
from tests.cli import assert_refused, krp_refused, run_krp
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit
from tests.settings import SANDBOX_URL

pytestmark = pytest.mark.usefixtures("sandbox")

REGION = "ap-northeast-2"
RUN_KEYS = {"id", "environment", "status", "checked", "deep_checked", "duration_seconds",
            "aws_calls", "finding_count", "error", "findings"}
FINDING_KEYS = {"kind", "resource_type", "arn", "resource", "details", "action_taken"}


def findings(stdout: str) -> dict[str, list[str]]:
    """ARN -> [kind, lines under it] from the text report."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            kind, *_, arn = line.split()  # an orphan of no known type has no type column
            current = found[arn] = [kind]
        elif line.startswith("   "):
            current.append(line.strip())
    return found


def made(user, resource_type: str, **kwargs) -> Resource:
    request = submit(user, unique_name("cli"), resource_type=resource_type, **kwargs)
    outcome = execute_request(request_id=str(request.pk), task_id=request.task_id)
    assert outcome.status == "succeeded", outcome.detail
    return Resource.objects.get(created_by_request=request)


def orphan_bucket(s3, environment: str) -> str:
    """A bucket tagged as KRP's that no inventory row knows; returns its ARN."""
    name = f"krp-{environment}-stray-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [
        {"Key": "krp:managed-by", "Value": "krp"},
        {"Key": "krp:environment", "Value": environment},
        {"Key": "krp:request-id", "Value": str(uuid.uuid4())},
    ]})
    return f"arn:aws:s3:::{name}"


def bucket_names(s3) -> list[str]:
    return [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.django_db
def test_reconcile_reports_missing_drifted_and_orphans_and_fix_repairs_drift(requester, cloud):
    s3, sqs = cloud.client("alpha", "s3"), cloud.client("alpha", "sqs")
    bucket = made(requester, "s3_bucket")
    s3.delete_bucket(Bucket=bucket.physical_name)
    queue = made(requester, "sqs_queue", tags={"owner": "payments"})
    sqs.tag_queue(QueueUrl=queue.physical_id, Tags={"owner": "someone-else"})
    orphan = orphan_bucket(s3, "alpha")

    report = krp_refused("reconcile", "--env", "alpha")

    assert "finding(s) left as they are; --fix / --delete-orphans act on them" in report.error
    found = findings(report.stdout)
    assert found[bucket.arn] == ["missing", f"resource {bucket.pk}: `--fix` marks it missing; "
                                 "then create it again (a create of the same name) or "
                                 "`krp forget` it"]
    assert found[queue.arn] == ["drifted", "tags.owner: expected 'payments', found 'someone-else'"]
    hint = ("keep it under KRP: krp import --env alpha --type s3_bucket --names "
            + orphan.removeprefix("arn:aws:s3:::"))
    assert found[orphan] == ["orphan", hint]
    assert sqs.list_queue_tags(QueueUrl=queue.physical_id)["Tags"]["owner"] == "someone-else"

    fixed = krp_refused("reconcile", "--env", "alpha", "--fix")

    found = findings(fixed.stdout)
    assert found[bucket.arn] == ["missing", "-> marked missing in the inventory",
                                 f"resource {bucket.pk}: create it again (a create of the "
                                 "same name) or `krp forget` it"]
    assert found[queue.arn][-1] == "-> re-applied the spec and tags"
    assert found[orphan] == ["orphan", hint]  # --fix never deletes
    assert sqs.list_queue_tags(QueueUrl=queue.physical_id)["Tags"]["owner"] == "payments"
    bucket.refresh_from_db()
    assert bucket.status == ResourceStatus.MISSING
    assert orphan.removeprefix("arn:aws:s3:::") in bucket_names(s3)

    s3.delete_bucket(Bucket=orphan.removeprefix("arn:aws:s3:::"))  # --delete-orphans: gamma


@pytest.mark.django_db
def test_reconcile_json_is_clean_on_stdout_with_progress_on_stderr(requester, cloud):
    queue = made(requester, "sqs_queue", tags={"owner": "payments"})
    cloud.client("alpha", "sqs").tag_queue(QueueUrl=queue.physical_id, Tags={"owner": "x"})

    refused = krp_refused("reconcile", "--env", "alpha", "--json")

    [run] = json.loads(refused.stdout)
    assert set(run) == RUN_KEYS
    assert (run["environment"], run["status"], run["error"]) == ("alpha", "findings", None)
    [finding] = [f for f in run["findings"] if f["arn"] == queue.arn]
    assert set(finding) == FINDING_KEYS
    assert finding["kind"] == "drifted"
    assert finding["resource"] == str(queue.pk)
    assert finding["details"]["tags.owner"] == {"expected": "payments", "actual": "x"}
    assert "alpha: listing resources tagged krp:managed-by=krp" in refused.stderr
    assert "resource(s) checked against the listing; describing" in refused.stderr
    # What the run cost, as recorded: its AWS calls by service and its findings.
    assert run["aws_calls"]["resourcegroupstaggingapi"] >= 1 and run["aws_calls"]["sqs"] >= 1
    assert run["finding_count"] == len(run["findings"]) and run["duration_seconds"] > 0


@pytest.mark.django_db
def test_reconcile_of_an_unknown_environment_is_refused():
    assert krp_refused("reconcile", "--env", "nowhere").error == (
        "--env: unknown environment nowhere")


# gamma: an environment (and account) of its own, where the exit status is KRP's alone

GAMMA_ENVIRONMENTS = {"gamma": {
    "account_id": "333333333333", "region": REGION, "endpoint_url": SANDBOX_URL,
    "role_arn": "arn:aws:iam::333333333333:role/krp-provisioner",
}}
# Eager: `krp submit --wait` carries the job out in its own process (no gamma worker).
GAMMA = {"KRP_ENVIRONMENTS": json.dumps(GAMMA_ENVIRONMENTS), "KRP_TASK_MODE": "eager"}


@pytest.fixture
def gamma_cloud(sandbox) -> CloudClients:
    return CloudClients(KrpSettings.from_environ({**os.environ, **GAMMA}))


def made_in_gamma(resource_type: str, *args: str) -> Resource:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    done = run_krp("submit", "--user", "rita", "--env", "gamma", "--type", resource_type,
                   "--name", name, "--wait", "--timeout", "60", *args, env=GAMMA)
    assert done.returncode == 0, done.stdout + done.stderr
    return Resource.objects.get(environment="gamma", name=name)


@pytest.mark.django_db(transaction=True)
def test_reconcile_exits_non_zero_until_every_finding_is_acted_on(requester, gamma_cloud):
    s3, sqs = gamma_cloud.client("gamma", "s3"), gamma_cloud.client("gamma", "sqs")
    bucket = made_in_gamma("s3_bucket")
    s3.delete_bucket(Bucket=bucket.physical_name)
    queue = made_in_gamma("sqs_queue", "--tag", "owner=payments")
    sqs.tag_queue(QueueUrl=queue.physical_id, Tags={"owner": "someone-else"})
    orphan = orphan_bucket(s3, "gamma")

    report = run_krp("reconcile", env=GAMMA)

    assert_refused(report, "3 finding(s) left as they are")
    assert report.stdout.startswith("gamma: findings, 2 resource(s) checked, 3 finding(s); "
                                    "2 described in full, ")
    assert {arn: lines[0] for arn, lines in findings(report.stdout).items()} == {
        bucket.arn: "missing", queue.arn: "drifted", orphan: "orphan"}

    fixed = run_krp("reconcile", "--fix", env=GAMMA)

    assert_refused(fixed, "1 finding(s) left as they are")  # the orphan, and only it
    assert findings(fixed.stdout)[queue.arn][-1] == "-> re-applied the spec and tags"
    assert sqs.list_queue_tags(QueueUrl=queue.physical_id)["Tags"]["owner"] == "payments"
    assert Resource.objects.get(pk=bucket.pk).status == ResourceStatus.MISSING

    cleaned = run_krp("reconcile", "--fix", "--delete-orphans", "--json", env=GAMMA)

    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    [run] = json.loads(cleaned.stdout)
    assert {f["arn"]: f["action_taken"] for f in run["findings"]} == {
        bucket.arn: "marked missing in the inventory", orphan: "deleted from the cloud"}
    assert orphan.removeprefix("arn:aws:s3:::") not in bucket_names(s3)
    assert "gamma: deleting orphan " + orphan in cleaned.stderr


@pytest.mark.django_db(transaction=True)
def test_reconcile_that_cannot_confirm_the_account_fails_naming_the_environment():
    environments = {"alpha": {"account_id": "333333333333", "region": REGION,
                              "endpoint_url": SANDBOX_URL}}

    done = run_krp("reconcile", env={"KRP_ENVIRONMENTS": json.dumps(environments)})

    assert_refused(done, "reconcile failed for alpha (environment 'alpha' is configured for "
                   "account 333333333333, but this worker's credentials resolve to account "
                   "123456789012")


@pytest.mark.django_db
def test_reconcile_fix_says_why_a_drift_was_not_fixed(requester, cloud):
    sqs = cloud.client("alpha", "sqs")
    queue = made(requester, "sqs_queue")
    someone_else = str(uuid.uuid4())
    # Another request's resource now stands under the name: a fix must not adopt it.
    sqs.tag_queue(QueueUrl=queue.physical_id, Tags={"krp:request-id": someone_else})

    fixed = krp_refused("reconcile", "--env", "alpha", "--fix")

    lines = findings(fixed.stdout)[queue.arn]
    assert lines[0] == "drifted"
    assert lines[-1].startswith("-> not fixed: ")
    assert f"belongs to KRP request {someone_else}" in lines[-1]
