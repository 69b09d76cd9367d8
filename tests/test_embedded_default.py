"""The embedded default end to end: SQLite, eager tasks, the sandbox AWS, `manage.py krp`.

Every step is a real `manage.py` process started as a newcomer types it in a second
terminal beside `bin/start`: no KRP_ENVIRONMENTS, no AWS_* variable at all, a HOME of its
own (no ~/.aws). Only the database (bin/start's is var/krp.sqlite3), the metrics directory
(var/metrics) and the sandbox's port (bin/start's is 4566; the tests' sandbox is on a free
port) are the tests' own.
"""

import json
import os
import subprocess
import uuid

import pytest

from tests.fixtures.ports import free_loopback_port
from tests.fixtures.processes import ROOT, manage

pytestmark = pytest.mark.usefixtures("sandbox")


class Terminal:
    """A second terminal on the embedded default: `run("krp", "check")` is
    `python manage.py krp check` there."""

    def __init__(self, tmp_path, sandbox_url: str):
        home = tmp_path / "home"
        home.mkdir()
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "KRP_DATABASE_URL": f"sqlite:///{tmp_path / 'krp.sqlite3'}",
            "KRP_SANDBOX_URL": sandbox_url,
            # Not the checkout's var/metrics, which a running bin/start may be using.
            "KRP_METRICS_DIR": str(tmp_path / "metrics"),
        }

    def run(self, *args: str, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(manage(*args), cwd=ROOT, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=120, input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        done = self.run(*args, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done


@pytest.fixture
def terminal(tmp_path, sandbox) -> Terminal:
    shell = Terminal(tmp_path, sandbox.url)
    shell.ok("migrate", "--noinput")
    shell.ok("krp", "createuser", "newcomer", "--team", "sandbox")
    shell.env["KRP_USER"] = "newcomer"
    return shell


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"  # the sandbox outlives each test's database


def refused(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode != 0, done.stdout + done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stderr


def test_submit_wait_status_and_reconcile_on_sqlite_in_eager_mode(terminal):
    queue = unique("first-queue")
    submitted = terminal.run("krp", "submit", "--env", "alpha", "--type", "sqs_queue",
                             "--name", queue, "--spec", '{"fifo": true}', "--wait")

    assert submitted.returncode == 0, submitted.stderr
    assert "running -> succeeded" in submitted.stdout

    listed = terminal.ok("krp", "status", "--json")
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["status"]) == (queue, "succeeded")

    detail = json.loads(terminal.ok("krp", "status", row["id"], "--json").stdout)
    assert detail["outputs"]["arn"].endswith(f":111111111111:krp-alpha-{queue}.fifo")

    checked = terminal.ok("krp", "check")
    assert "broker: not used (eager mode)" in checked.stdout
    assert "sweep: not scheduled (eager mode): no beat runs it" in checked.stdout

    reconciled = terminal.run("krp", "reconcile", "--env", "alpha", "--json")
    [run] = json.loads(reconciled.stdout)
    assert run["checked"] == 1
    assert not [f for f in run["findings"] if f["kind"] != "orphan"]


def test_check_in_a_second_terminal_needs_no_aws_variables(terminal):
    checked = terminal.ok("krp", "check")

    assert "broker: not used (eager mode)" in checked.stdout
    assert ("environment alpha (account 111111111111, ap-northeast-2, queue alpha): ok"
            in checked.stdout)
    assert ("environment prod (account 222222222222, ap-northeast-2, queue prod): ok"
            in checked.stdout)


def test_the_shells_own_aws_profile_and_keys_are_not_used_for_the_sandbox(terminal):
    # A profile that exists only in the operator's ~/.aws would break boto3's chain
    # (ProfileNotFound); the embedded default never consults the chain.
    shell = {"AWS_PROFILE": "work-account", "AWS_ACCESS_KEY_ID": "AKIAREALKEYOFTHESHELL",
             "AWS_SECRET_ACCESS_KEY": "real-secret-of-the-shell"}

    checked = terminal.ok("krp", "check", "--json", env=shell)
    submitted = terminal.run("krp", "submit", "--env", "alpha", "--type", "s3_bucket",
                             "--name", unique("logs"), "--wait", env=shell)

    report = json.loads(checked.stdout)
    assert {e["status"] for e in report["environments"].values()} == {"ok"}
    assert report["environments"]["alpha"]["arn"].startswith(
        "arn:aws:sts::111111111111:assumed-role/krp-provisioner/")
    assert "real-secret-of-the-shell" not in checked.stdout + checked.stderr
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr


def test_without_krp_user_the_message_says_what_to_set_and_names_bin_starts_user(terminal):
    terminal.ok("krp", "createuser", "admin", "--team", "sandbox", "--approver")
    del terminal.env["KRP_USER"]

    done = terminal.run("krp", "submit", "--env", "alpha", "--type", "s3_bucket",
                        "--name", unique("logs"))

    refused(done, "say who you act as: set KRP_USER=<username> or pass --user <username>; "
                  "bin/start made the user 'admin': export KRP_USER=admin")


def test_submit_json_without_wait_shows_the_status_its_events_reached(terminal):
    done = terminal.ok("krp", "submit", "--env", "alpha", "--type", "s3_bucket",
                       "--name", unique("logs"), "--json")

    document = json.loads(done.stdout)
    assert document["status"] == "succeeded"
    assert document["events"][-1]["to_status"] == "succeeded"
    assert document["outputs"]["arn"].startswith("arn:aws:s3:::krp-alpha-logs-")


def test_submit_text_without_wait_says_how_it_ended(terminal):
    done = terminal.ok("krp", "submit", "--env", "alpha", "--type", "s3_bucket",
                       "--name", unique("logs"))

    assert done.stdout.rstrip().endswith(" is succeeded"), done.stdout


def test_retry_of_a_failed_request_prints_where_its_run_ended_not_queued(terminal,
                                                                        sandbox_faults):
    sandbox_faults.set_faults(deny_actions=["CreateBucket"])
    failed = terminal.run("krp", "submit", "--env", "alpha", "--type", "s3_bucket",
                          "--name", unique("logs"), "--json")
    document = json.loads(failed.stdout)
    assert (document["status"], document["error"]["code"]) == ("failed", "AccessDenied")
    sandbox_faults.set_faults(deny_actions=[])

    retried = terminal.ok("krp", "retry", document["id"])

    assert retried.stdout.strip() == (
        f"request {document['id']} queued again, and it has run since: now succeeded")


def test_retry_of_a_request_that_succeeded_is_refused_saying_it_succeeded(terminal):
    done = json.loads(terminal.ok("krp", "submit", "--env", "alpha", "--type", "s3_bucket",
                                  "--name", unique("logs"), "--json").stdout)

    retried = terminal.run("krp", "retry", done["id"])

    refused(retried, f"request {done['id']} is succeeded; cannot retry it")
    assert "queued" not in retried.stdout


def test_approve_by_an_approver_made_with_createuser_runs_the_request(terminal):
    terminal.ok("krp", "createuser", "alice", "--team", "sandbox", "--approver")
    waiting = json.loads(terminal.ok("krp", "submit", "--env", "prod", "--type", "sqs_queue",
                                     "--name", unique("orders"), "--json").stdout)
    assert waiting["status"] == "pending_approval"

    approved = terminal.ok("krp", "approve", waiting["id"], env={"KRP_USER": "alice"})

    assert approved.stdout.strip() == (
        f"request {waiting['id']} approved, and it has run since: now succeeded")


def test_with_the_sandbox_not_running_check_and_submit_say_to_start_it(terminal):
    nowhere = f"http://127.0.0.1:{free_loopback_port()}"
    stopped = {"KRP_SANDBOX_URL": nowhere}

    checked = terminal.run("krp", "check", env=stopped)
    submitted = terminal.run("krp", "submit", "--env", "alpha", "--type", "s3_bucket",
                             "--name", unique("logs"), env=stopped)

    start_it = (f"the sandbox AWS at {nowhere} is not answering: start it with bin/start "
                "(or manage.py krp sandbox)")
    refused(checked, "check failed")
    assert start_it in checked.stdout
    refused(submitted, start_it, "nothing was recorded")
    assert json.loads(terminal.ok("krp", "status", "--json").stdout) == []


def test_configured_environments_without_credentials_say_what_to_set(terminal, sandbox):
    environments = {"alpha": {"account_id": "111111111111", "region": "ap-northeast-2",
                              "role_arn": "arn:aws:iam::111111111111:role/krp-provisioner",
                              "endpoint_url": sandbox.url}}
    configured = {"KRP_ENVIRONMENTS": json.dumps(environments),
                  "AWS_EC2_METADATA_DISABLED": "true"}  # no instance role to wait for here

    checked = terminal.run("krp", "check", env=configured)
    submitted = terminal.run("krp", "submit", "--env", "alpha", "--type", "s3_bucket",
                             "--name", unique("logs"), env=configured)

    what_to_set = ("no AWS credentials for environment 'alpha' in this process: set "
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE")
    refused(checked, "check failed")
    assert f"queue alpha): no_credentials: {what_to_set}" in checked.stdout
    refused(submitted, what_to_set, "nothing was recorded")
