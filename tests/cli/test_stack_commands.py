"""`krp stack submit / status / approve / cancel / retry / delete`: stacks from a shell,
through the same services as the API, acting as the user --user (or KRP_USER) names.

In the test process nothing publishes (the after-commit publish never fires inside the
test's transaction): `drive` runs a stack's steps here as workers would. `--wait` runs in
a real process in eager mode, where the stack runs within the submit.
"""

import io
import json
from datetime import timedelta

import pytest
import yaml
from django.contrib.auth.models import Group, User
from django.utils import timezone

from provisioning.models import Stack, StackStatus
from tests.cli import assert_refused, krp, krp_refused, run_krp
from tests.fixtures.stacks import drive, queue_topic_role, stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

DOCUMENT_KEYS = {"id", "environment", "name", "status", "action", "team", "requested_by",
                 "rollback", "blueprint", "parameters", "error", "created_at", "started_at",
                 "finished_at", "members", "events", "ttl", "expires_at", "expiry_warnings",
                 "expiry_problem"}
MEMBER_KEYS = {"key", "resource_type", "name", "status", "depends_on", "request",
               "delete_request", "error"}


def members_shown(stdout: str) -> dict[str, list[str]]:
    """The member table a submit or a transition prints: key -> [type, status, depends on]."""
    rows = stdout.split("  member ", 1)[1].splitlines()[1:]
    return {row.split()[0]: row.split()[1:-1] for row in rows}


def bucket_stack(environment: str = "alpha") -> dict:
    return {"environment": environment, "name": stack_name("cli"),
            "members": {"logs": {"resource_type": "s3_bucket", "spec": {}}}}


def submitted(*args: str) -> Stack:
    """`krp stack submit <args> --user rita --json`'s stack."""
    document = json.loads(krp("stack", "submit", *args, "--user", "rita", "--json").stdout)
    return Stack.objects.get(pk=document["id"])


# submit


def test_submitting_a_json_file_prints_the_stack_and_its_first_step(requester, tmp_path):
    document = queue_topic_role(stack_name("json"))
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(document))

    ran = krp("stack", "submit", str(path), "--user", "rita")

    stack = Stack.objects.get(name=document["name"])
    assert ran.stdout.splitlines()[0] == (
        f"stack {stack.pk} recorded: stack alpha/{stack.name} is running")
    assert members_shown(ran.stdout) == {
        "jobs": ["sqs_queue", "queued", "-"],
        "audit": ["s3_bucket", "queued", "-"],
        "events": ["sns_topic", "waiting", "jobs"],
        "reader": ["iam_role", "waiting", "jobs"],
    }


def test_a_yaml_file_submits_and_status_shows_every_member_once_it_ran(requester, tmp_path):
    document = queue_topic_role(stack_name("yaml"))
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(document))
    stack = drive(submitted(str(path)))

    ran = krp("stack", "status", str(stack.pk), "--user", "rita")

    assert stack.status == StackStatus.SUCCEEDED, stack.error_message
    assert "status: succeeded" in ran.stdout
    members = ran.stdout.split("members:\n", 1)[1].split("events:\n")[0]
    for member in stack.members.all():
        assert (f"  {member.key}: {member.resource_type} {member.name} is succeeded\n"
                f"    depends on: {', '.join(member.depends_on) or '-'}\n"
                f"    request: {member.request_id}\n") in members
    events = ran.stdout.split("events:\n", 1)[1].splitlines()
    assert events[0].endswith(" - -> running (rita) submitted with 4 members")
    assert events[-1].endswith(" running -> succeeded (worker) all 4 members created")


def test_a_document_on_stdin_submits(requester, monkeypatch):
    document = bucket_stack()
    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump(document)))

    stack = submitted("-")

    assert (stack.name, stack.members.get().resource_type) == (document["name"], "s3_bucket")


def test_a_blueprint_with_a_parameter_runs_to_success(requester):
    name = stack_name("bp")

    stack = drive(submitted("--blueprint", "queue-with-dlq", "--version", "1", "--env",
                            "alpha", "--name", name, "--param", "max_receive_count=3"))

    document = json.loads(krp("stack", "status", str(stack.pk), "--user", "rita",
                              "--json").stdout)
    assert document["status"] == "succeeded", document["error"]
    assert (document["blueprint"], document["parameters"]) == (
        "queue-with-dlq v1", {"max_receive_count": 3})
    assert {m["status"] for m in document["members"]} == {"succeeded"}
    queue = stack.members.get(key="queue").request
    assert queue.spec["dead_letter_queue"] == {"max_receive_count": 3}  # a number, not "3"


def test_a_bad_document_is_refused_naming_each_offending_member(requester, tmp_path):
    document = queue_topic_role(stack_name("bad"))
    document["members"]["events"]["spec"]["subscriptions"][0]["queue"] = {"ref": "nobody.name"}
    document["members"]["jobs"]["spec"]["dead_letter_queue"]["max_receive_count"] = "often"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))

    refused = krp_refused("stack", "submit", str(path), "--user", "rita")

    code, *lines = refused.error.splitlines()
    assert code == "invalid_request:"
    paths = [line.strip().split(": ")[0] for line in lines]
    assert "members.events.spec.subscriptions[0].queue" in paths
    assert any(p.startswith("members.jobs.spec.dead_letter_queue") for p in paths), paths
    assert not Stack.objects.exists()


def test_a_bad_parameter_is_refused_naming_it(requester):
    refused = krp_refused("stack", "submit", "--blueprint", "queue-with-dlq", "--env", "alpha",
                          "--name", stack_name("bp"), "--param", "max_receive_count=0",
                          "--param", "colour=red", "--user", "rita")

    assert refused.error.startswith("invalid_parameters:\n")
    assert "  parameters.colour: is not a parameter of this blueprint" in refused.error
    assert "  parameters.max_receive_count: " in refused.error
    assert not Stack.objects.exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--blueprint", "nothing", "--env", "alpha", "--name", "abc"), "blueprint: no blueprint "
     "'nothing' (known: queue-with-dlq, table-with-events)"),
    (("--blueprint", "queue-with-dlq", "--env", "alpha"), "--name: required with --blueprint"),
    (("--blueprint", "queue-with-dlq", "--env", "alpha", "--name", "abc", "--param", "x"),
     "--param 'x': use NAME=VALUE"),
    (("stack.json", "--env", "alpha"), "--env: not with FILE"),
    ((), "say what to submit: a FILE"),
])
def test_submit_with_bad_arguments_is_refused_saying_which(requester, args, message):
    assert message in krp_refused("stack", "submit", *args, "--user", "rita").error


@pytest.mark.parametrize(("text", "message"), [
    ("members: [unclosed\n", ": neither JSON nor YAML ("),
    ("name: a\nname: b\n", "the key 'name' appears more than once"),
    ("name: 2026-12-01\n", "Object of type date is not JSON serializable (quote it"),
])
def test_a_file_that_is_not_a_json_document_is_refused_saying_why(requester, tmp_path, text,
                                                                  message):
    path = tmp_path / "stack.yaml"
    path.write_text(text)

    refused = krp_refused("stack", "submit", str(path), "--user", "rita")

    assert refused.error.startswith(f"{path}: ")
    assert message in refused.error
    assert not Stack.objects.exists()


def test_stack_without_an_action_is_refused_naming_the_actions():
    refused = krp_refused("stack")

    assert "the following arguments are required: action" in refused.error


def test_submitting_again_with_the_same_idempotency_key_returns_the_first(requester, tmp_path):
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(bucket_stack()))
    args = ("stack", "submit", str(path), "--user", "rita", "--idempotency-key", "once")
    krp(*args)

    again = krp(*args)

    stack = Stack.objects.get()
    assert again.stdout.startswith(f"stack {stack.pk} already recorded: ")


# status


def test_status_lists_the_stacks_of_the_users_teams_newest_first(requester, tmp_path):
    older = submitted("--blueprint", "queue-with-dlq", "--env", "alpha", "--name",
                      stack_name("old"))
    newer = submitted("--blueprint", "queue-with-dlq", "--env", "prod", "--name",
                      stack_name("new"))
    other = User.objects.create_user("dana")
    other.groups.add(Group.objects.create(name="data"))

    header, *rows = krp("stack", "status", "--user", "rita").stdout.splitlines()

    assert header.split() == ["id", "status", "env", "expires", "name"]
    assert [row.split() for row in rows] == [
        [str(newer.pk), "pending_approval", "prod", "-", newer.name],
        [str(older.pk), "running", "alpha", "-", older.name],
    ]
    only = json.loads(krp("stack", "status", "--user", "rita", "--env", "prod",
                          "--json").stdout)
    assert [row["id"] for row in only] == [str(newer.pk)]
    assert krp("stack", "status", "--user", "dana").stdout.splitlines()[1:] == []
    assert krp_refused("stack", "status", str(older.pk), "--user", "dana").error == (
        f"no stack {older.pk}")


def test_status_json_of_one_stack_has_its_members_and_events(requester):
    stack = submitted("--blueprint", "queue-with-dlq", "--env", "alpha", "--name",
                      stack_name("js"))

    document = json.loads(krp("stack", "status", str(stack.pk), "--user", "rita",
                              "--json").stdout)

    assert set(document) == DOCUMENT_KEYS
    assert {m["key"]: m["status"] for m in document["members"]} == {
        "queue": "queued", "reader": "waiting"}
    assert set(document["members"][0]) == MEMBER_KEYS
    assert document["events"][0]["to_status"] == "running"


# approve, cancel, retry, delete


def test_approve_lets_a_waiting_stack_run(requester, operator):
    stack = submitted("--blueprint", "queue-with-dlq", "--env", "prod", "--name",
                      stack_name("ok"))

    ran = krp("stack", "approve", str(stack.pk), "--user", "otto")

    assert ran.stdout.splitlines()[0] == f"stack {stack.pk} approved: now running"
    assert members_shown(ran.stdout)["queue"] == ["sqs_queue", "queued", "-"]


def test_approving_your_own_stack_is_refused_with_the_reason(operator, tmp_path):
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(bucket_stack("prod")))
    stack = Stack.objects.get(pk=json.loads(krp(
        "stack", "submit", str(path), "--user", "otto", "--json").stdout)["id"])

    refused = krp_refused("stack", "approve", str(stack.pk), "--user", "otto")

    assert refused.error == "self_approval: a requester cannot approve their own stack"


def test_cancel_withdraws_a_waiting_stack(requester):
    stack = submitted("--blueprint", "queue-with-dlq", "--env", "prod", "--name",
                      stack_name("no"))

    ran = krp("stack", "cancel", str(stack.pk), "--user", "rita")

    assert ran.stdout.splitlines()[0] == f"stack {stack.pk} cancelled: now cancelled"
    assert set(members_shown(ran.stdout)) == {"queue", "reader"}


def test_retry_runs_a_rolled_back_stack_again(requester, tmp_path):
    document = queue_topic_role(stack_name("retry"))
    document["members"]["reader"]["spec"]["managed_policy_arns"] = [
        "arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"]
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(document))
    stack = drive(submitted(str(path)))
    shown = krp("stack", "status", str(stack.pk), "--user", "rita").stdout
    assert stack.status == StackStatus.ROLLED_BACK
    assert "  jobs: sqs_queue " in shown and " is deleted\n" in shown
    assert "  reader: iam_role " in shown and "    error: NoSuchEntity: " in shown

    ran = krp("stack", "retry", str(stack.pk), "--user", "rita")

    assert ran.stdout.splitlines()[0] == f"stack {stack.pk} retried: now running"
    assert members_shown(ran.stdout)["jobs"] == ["sqs_queue", "queued", "-"]


def test_delete_tears_a_stack_down_and_status_shows_its_members_deleted(requester):
    stack = drive(submitted("--blueprint", "queue-with-dlq", "--env", "alpha", "--name",
                            stack_name("del")))

    ran = krp("stack", "delete", str(stack.pk), "--user", "rita")

    assert ran.stdout.splitlines()[0] == f"stack {stack.pk} deletion asked: now deleting"
    assert members_shown(ran.stdout) == {"reader": ["iam_role", "deleting", "queue"],
                                         "queue": ["sqs_queue", "succeeded", "-"]}
    drive(stack)
    document = json.loads(krp("stack", "status", str(stack.pk), "--user", "rita",
                              "--json").stdout)
    assert document["status"] == "deleted"
    assert {m["status"] for m in document["members"]} == {"deleted"}


def test_deleting_a_stack_that_is_running_is_refused_with_the_reason(requester):
    stack = submitted("--blueprint", "queue-with-dlq", "--env", "alpha", "--name",
                      stack_name("busy"))

    refused = krp_refused("stack", "delete", str(stack.pk), "--user", "rita")

    assert refused.error == (f"stack_state: stack {stack.pk} is running; only a stack that "
                             "succeeded or failed can be deleted")


def test_a_transition_json_is_the_stack_document(requester, operator):
    stack = submitted("--blueprint", "queue-with-dlq", "--env", "prod", "--name",
                      stack_name("js"))

    document = json.loads(krp("stack", "approve", str(stack.pk), "--user", "otto",
                              "--json").stdout)

    assert set(document) == DOCUMENT_KEYS
    assert document["status"] == "running"


@pytest.mark.parametrize("action", ["status", "approve", "cancel", "retry", "delete"])
def test_an_unknown_stack_or_no_user_is_refused(action, requester):
    assert krp_refused("stack", action, "not-a-stack-id", "--user", "rita").error == (
        "no stack not-a-stack-id")
    assert krp_refused("stack", action, "not-a-stack-id").error == (
        "say who you act as: set KRP_USER=<username> or pass --user <username>")


# real processes


@pytest.mark.django_db(transaction=True)
def test_a_process_refused_a_bad_document_exits_non_zero_naming_each_member(
    requester, tmp_path
):
    document = queue_topic_role(stack_name("bad"))
    document["members"]["events"]["spec"]["subscriptions"][0]["queue"] = {"ref": "jobs.colour"}
    document["members"]["audit"]["resource_type"] = "ftp_server"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))

    done = run_krp("stack", "submit", str(path), "--user", "rita")

    assert_refused(done, "\n  members.events.spec.subscriptions[0].queue: jobs (sqs_queue) has "
                   "no output 'colour'", "\n  members.audit.resource_type: ")
    assert not Stack.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_submit_wait_in_eager_mode_prints_each_member_change_until_it_succeeds(
    requester, tmp_path
):
    # A file, not a blueprint: a transactional test starts from a flushed database, without
    # the blueprints the migrations ship.
    document = {"environment": "alpha", "name": stack_name("wait"), "members": {
        "jobs": {"resource_type": "sqs_queue", "spec": {}},
        "events": {"resource_type": "sns_topic",
                   "spec": {"subscriptions": [{"queue": {"ref": "jobs.name"}}]}}}}
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(document))

    done = run_krp("stack", "submit", str(path), "--wait", "--user", "rita",
                   env={"KRP_TASK_MODE": "eager"})

    assert done.returncode == 0, done.stdout + done.stderr
    stack = Stack.objects.get(name=document["name"])
    assert stack.status == StackStatus.SUCCEEDED
    changes = [line.split(" ", 1)[1].split(" (")[0] for line in done.stdout.splitlines()[1:]]
    for member in ("jobs", "events"):
        assert [c for c in changes if c.startswith(f"{member}: ")] == [
            f"{member}: - -> queued", f"{member}: queued -> running",
            f"{member}: running -> succeeded"]
    assert changes.index("jobs: running -> succeeded") < changes.index("events: - -> queued")
    assert changes[-1] == "stack: running -> succeeded"


@pytest.mark.django_db(transaction=True)
def test_submit_wait_on_a_stack_that_fails_exits_non_zero_with_the_reason(requester, tmp_path):
    document = bucket_stack()
    document["members"]["reader"] = {"resource_type": "iam_role", "spec": {
        "trusted_service": "lambda.amazonaws.com",
        "managed_policy_arns": ["arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"]}}
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(document))

    done = run_krp("stack", "submit", str(path), "--wait", "--user", "rita",
                   env={"KRP_TASK_MODE": "eager"})

    stack = Stack.objects.get(name=document["name"])
    assert_refused(done, f"stack {stack.pk} ended rolled_back: member_failed: member reader "
                   "failed")
    assert "logs (delete): running -> succeeded" in done.stdout


def test_stack_submit_help_as_a_process_names_its_options():
    done = run_krp("stack", "submit", "--help")

    assert done.returncode == 0, done.stderr
    for option in ("FILE", "--blueprint", "--version", "--env", "--name", "--param", "--team",
                   "--idempotency-key", "--wait", "--user", "--json"):
        assert option in done.stdout
    assert_refused(run_krp("stack", "launch"), "invalid choice: 'launch'")


# extend


def test_extend_gives_a_stack_a_new_expiry_and_status_shows_it(requester):
    stack = drive(submitted("--blueprint", "queue-with-dlq", "--env", "zeta", "--name",
                            stack_name("ttl"), "--ttl", "1d"))
    before = timezone.now()

    ran = krp("stack", "extend", str(stack.pk), "--ttl", "3d", "--user", "rita")

    stack.refresh_from_db()
    assert before + timedelta(days=3) <= stack.expires_at <= timezone.now() + timedelta(days=3)
    assert ran.stdout.strip() == (f"stack {stack.pk} (stack zeta/{stack.name}) now expires at "
                                  f"{stack.expires_at.isoformat()}")
    shown = krp("stack", "status", str(stack.pk), "--user", "rita").stdout
    assert "         ttl: 1d" in shown.splitlines()
    assert f"  expires_at: {stack.expires_at}" in shown.splitlines()


def test_extend_beyond_the_bound_is_refused_naming_it(requester):
    stack = drive(submitted("--blueprint", "queue-with-dlq", "--env", "zeta", "--name",
                            stack_name("ttl"), "--ttl", "1d"))

    refused = krp_refused("stack", "extend", str(stack.pk), "--ttl", "8d", "--user", "rita")

    assert refused.error == "ttl_too_long:\n  ttl: at most 7d in zeta"
