"""/api/v1/stacks/ and /api/v1/blueprints/: submit a stack document or a blueprint, watch
its members, approve, cancel, retry, delete; team scope, idempotency and the error shape.

Stacks here are driven in the test process (tests/fixtures/stacks.py `drive`) against the
sandbox where they must run: a test's transaction never commits, so nothing is published.
"""

from __future__ import annotations

import pytest

from provisioning.models import StackMember, StackStatus
from tests.api.conftest import error_of
from tests.fixtures.stacks import drive, queue_topic_role, stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

STACKS = "/api/v1/stacks/"


def stack_url(stack_id, action: str | None = None) -> str:
    return f"{STACKS}{stack_id}/" + (f"{action}/" if action else "")


def submitted(client, document, **headers):
    response = client.post(STACKS, document, format="json", **headers)
    assert response.status_code == 202, response.json()
    return response.json()


def test_submit_answers_202_with_the_members_in_dependency_order(requester_api):
    name = stack_name("api")
    body = submitted(requester_api, queue_topic_role(name))

    assert body["url"] == stack_url(body["id"])
    assert (body["status"], body["environment"], body["name"], body["team"]) == (
        "running", "alpha", name, "platform")
    members = {m["key"]: m for m in body["members"]}
    assert [m["key"] for m in body["members"]] == ["jobs", "audit", "events", "reader"]
    assert members["events"]["depends_on"] == ["jobs"]
    assert members["events"]["name"] == f"{name}-events"
    # The first step is recorded: what depends on nothing has a queued request.
    assert (members["jobs"]["status"], members["audit"]["status"]) == ("queued", "queued")
    assert (members["events"]["status"], members["events"]["request"]) == ("waiting", None)
    assert members["events"]["spec"] == {"subscriptions": [{"queue": {"ref": "jobs.name"}}]}


def test_detail_shows_resolved_specs_and_outputs_once_members_succeed(requester_api):
    body = submitted(requester_api, queue_topic_role(stack_name("api")))
    from provisioning.models import Stack

    drive(Stack.objects.get(pk=body["id"]))

    detail = requester_api.get(stack_url(body["id"])).json()
    assert detail["status"] == "succeeded"
    members = {m["key"]: m for m in detail["members"]}
    jobs = members["jobs"]
    assert jobs["outputs"]["arn"].endswith(f"{detail['name']}-jobs")
    assert members["events"]["resolved_spec"]["subscriptions"][0]["queue"] == jobs["name"]
    assert members["reader"]["resolved_spec"]["inline_policy"]["Statement"][0]["Resource"] == [
        jobs["outputs"]["arn"], jobs["outputs"]["dlq_arn"]]
    assert all(m["resource"] for m in detail["members"])
    assert [e["to_status"] for e in detail["events"]] == ["running", "succeeded"]


def test_a_bad_document_is_one_400_naming_every_member_and_path(requester_api):
    document = queue_topic_role(stack_name("bad"))
    document["members"]["audit"]["spec"] = {"versioning": "yes"}
    document["members"]["events"]["spec"]["subscriptions"][0]["queue"] = {"ref": "ghost.name"}
    document["members"]["jobs"]["spec"]["delay_seconds"] = {"ref": "reader.arn"}
    document["members"]["reader"]["spec"]["description"] = {"ref": "jobs.arn"}

    response = requester_api.post(STACKS, document, format="json")

    assert response.status_code == 400
    error = error_of(response)
    assert set(error["fields"]) >= {
        "members.audit.spec.versioning", "members.events.spec.subscriptions[0].queue",
        "members.jobs", "members.reader"}
    assert any("depends on itself" in p for p in error["fields"]["members.jobs"])
    assert not StackMember.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ([1, 2], "body"),
    ({"environment": "staging", "name": "abc", "members": {}}, "environment"),
    ({"environment": "alpha", "name": "A!", "members": {"x": {"resource_type": "s3_bucket"}}},
     "name"),
    ({"environment": "alpha", "name": "abc", "members": {"x": {"resource_type": "s3_bucket"}},
      "colour": "red"}, "colour"),
])
def test_a_malformed_stack_is_a_400_naming_the_field(requester_api, body, field):
    response = requester_api.post(STACKS, body, format="json")
    assert response.status_code == 400
    assert field in error_of(response)["fields"]


def test_the_same_idempotency_key_returns_the_first_stack(requester_api):
    document = queue_topic_role(stack_name("idem"))
    first = submitted(requester_api, document, HTTP_IDEMPOTENCY_KEY="stack-1")

    again = requester_api.post(STACKS, document, format="json", HTTP_IDEMPOTENCY_KEY="stack-1")

    assert again.status_code == 200 and again.json()["id"] == first["id"]
    other = requester_api.post(STACKS, {**document, "rollback": False}, format="json",
                               HTTP_IDEMPOTENCY_KEY="stack-1")
    assert (other.status_code, error_of(other)["code"]) == (409, "idempotency_key_reused")


def test_a_live_stack_name_is_a_409(requester_api):
    document = queue_topic_role(stack_name("dup"))
    submitted(requester_api, document)
    response = requester_api.post(STACKS, document, format="json")
    assert (response.status_code, error_of(response)["code"]) == (409, "already_exists")


def test_another_teams_stack_is_not_found_and_not_listed(requester_api, other_operator_api):
    body = submitted(requester_api, queue_topic_role(stack_name("mine")))

    assert other_operator_api.get(stack_url(body["id"])).status_code == 404
    assert other_operator_api.post(stack_url(body["id"], "approve")).status_code == 404
    assert other_operator_api.delete(stack_url(body["id"])).status_code == 404
    assert other_operator_api.get(STACKS).json()["results"] == []
    assert [s["id"] for s in requester_api.get(STACKS).json()["results"]] == [body["id"]]


def test_list_filters_by_status_and_refuses_unknown_values(requester_api):
    submitted(requester_api, queue_topic_role(stack_name("f")))
    assert requester_api.get(STACKS, {"status": "succeeded"}).json()["results"] == []
    assert len(requester_api.get(STACKS, {"status": "running"}).json()["results"]) == 1
    refused = requester_api.get(STACKS, {"status": "done"})
    assert refused.status_code == 400 and "status" in error_of(refused)["fields"]


def test_prod_waits_for_approval_the_approver_sees_every_member_and_approves(
    requester_api, operator_api
):
    body = submitted(requester_api, queue_topic_role(stack_name("p"), environment="prod"))
    assert body["status"] == "pending_approval"
    assert all(m["status"] == "waiting" and m["spec"] is not None for m in body["members"])
    assert requester_api.post(stack_url(body["id"], "approve")).status_code == 403

    approved = operator_api.post(stack_url(body["id"], "approve"))

    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("running", "otto")


def test_cancel_withdraws_a_waiting_stack_and_refuses_a_running_one(requester_api):
    waiting = submitted(requester_api, queue_topic_role(stack_name("c"), environment="prod"))
    running = submitted(requester_api, queue_topic_role(stack_name("c")))

    assert requester_api.post(stack_url(waiting["id"], "cancel")).json()["status"] == (
        "cancelled")
    refused = requester_api.post(stack_url(running["id"], "cancel"))
    assert refused.status_code == 409
    assert "running" in error_of(refused)["message"]


def test_delete_tears_a_succeeded_stack_down(requester_api):
    from provisioning.models import Stack

    body = submitted(requester_api, queue_topic_role(stack_name("d")))
    drive(Stack.objects.get(pk=body["id"]))

    response = requester_api.delete(stack_url(body["id"]))

    assert response.status_code == 202
    assert response.json()["status"] == "deleting"
    stack = drive(Stack.objects.get(pk=body["id"]))
    assert stack.status == StackStatus.DELETED
    detail = requester_api.get(stack_url(body["id"])).json()
    assert {m["status"] for m in detail["members"]} == {"deleted"}


def test_retry_of_a_running_stack_is_refused(requester_api):
    body = submitted(requester_api, queue_topic_role(stack_name("r")))
    refused = requester_api.post(stack_url(body["id"], "retry"))
    assert (refused.status_code, error_of(refused)["code"]) == (409, "stack_state")


def test_blueprints_are_listed_with_their_parameter_schemas(requester_api):
    blueprints = {b["name"]: b for b in requester_api.get("/api/v1/blueprints/").json()}

    queue = blueprints["queue-with-dlq"]
    assert queue["latest_version"] == 1
    version = queue["versions"][0]
    assert version["members"] == {"queue": "sqs_queue", "reader": "iam_role"}
    assert version["parameters_schema"]["properties"]["max_receive_count"]["default"] == 5


def test_a_stack_from_a_blueprint_records_the_version_and_parameters(requester_api):
    from provisioning.models import Stack

    body = submitted(requester_api, {
        "blueprint": "queue-with-dlq", "version": 1, "environment": "alpha",
        "name": stack_name("bp"), "parameters": {"max_receive_count": 3}})

    assert body["blueprint"] == {"name": "queue-with-dlq", "version": 1}
    assert body["parameters"] == {"max_receive_count": 3}
    stack = drive(Stack.objects.get(pk=body["id"]))
    assert stack.status == StackStatus.SUCCEEDED, stack.error_message


def test_bad_blueprint_parameters_are_a_400_naming_each(requester_api):
    response = requester_api.post(STACKS, {
        "blueprint": "queue-with-dlq", "environment": "alpha", "name": stack_name("bp"),
        "parameters": {"max_receive_count": "three", "reader_service": "me"}}, format="json")

    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"parameters.max_receive_count",
                                                 "parameters.reader_service"}


def test_resource_types_say_which_outputs_a_member_may_refer_to(requester_api):
    types = {t["name"]: t for t in requester_api.get("/api/v1/resource-types/").json()}
    assert {"name", "arn", "queue_url", "dlq_arn"} <= set(types["sqs_queue"]["outputs"])
    assert "role_name" in types["iam_role"]["outputs"]


def test_a_members_request_names_its_stack_and_member(requester_api):
    body = submitted(requester_api, queue_topic_role(stack_name("m")))
    jobs = next(m for m in body["members"] if m["key"] == "jobs")

    request = requester_api.get(f"/api/v1/requests/{jobs['request']}/").json()

    assert (request["stack"], request["stack_member"]) == (body["id"], "jobs")
    assert request["events"][0]["message"].startswith("submitted as member jobs of stack")
