"""?dry_run=true and `krp submit --plan`: the same checks as a submission, an answer with
the plan, and nothing recorded but an audit row (DryRun)."""

from __future__ import annotations

import pytest

from provisioning.models import DryRun, RequestAction, ResourceRequest, Stack
from provisioning.services import execute_request
from tests.api.conftest import REQUESTS, error_of
from tests.cli import krp
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit
from tests.fixtures.stacks import queue_topic_role, stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]


@pytest.fixture
def workers_in_process(container):
    """Tasks run in this process as they are published (Celery's own eager switch): a
    dry run's plan by "a worker of the environment" is then this process, in the test's
    transaction, against the sandbox."""
    app = container.celery_app()
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_a_create_dry_run_answers_the_plan_and_records_nothing(requester_api, requester):
    name = unique_name("dry")
    response = requester_api.post(f"{REQUESTS}?dry_run=true", {
        "environment": "alpha", "resource_type": "s3_bucket", "name": name,
        "spec": {"versioning": True}, "tags": {"owner": "data"}}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["dry_run"] is True and body["action"] == "create"
    assert body["plan"]["lines"][0] == f"will create s3_bucket krp-alpha-{name}"
    assert "versioning: + true" in body["plan"]["lines"]
    assert not ResourceRequest.objects.filter(name=name).exists()
    audit = DryRun.objects.get(name=name)
    assert (audit.user, audit.action, audit.lines) == (requester, "create",
                                                       body["plan"]["lines"])


def test_an_update_dry_run_is_planned_by_a_worker_of_the_environment(
    requester, requester_api, workers_in_process
):
    created = submit(requester, unique_name("dry"), expect_new=True)
    execute_request(request_id=str(created.pk), task_id=created.task_id)
    requests_before = ResourceRequest.objects.count()

    response = requester_api.post(f"{REQUESTS}?dry_run=true", {
        "environment": "alpha", "resource_type": "s3_bucket", "name": created.name,
        "action": "update", "spec": {"versioning": True}}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["plan"]["lines"] == [
        f"will update s3_bucket {created.physical_name}: 1 change",
        "versioning: false -> true"]
    assert ResourceRequest.objects.count() == requests_before


def test_a_dry_run_refuses_bad_input_as_a_submission_does(requester_api):
    response = requester_api.post(f"{REQUESTS}?dry_run=true", {
        "environment": "staging", "resource_type": "s3_bucket", "name": "Bad!"},
        format="json")
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"environment", "name"}
    assert not DryRun.objects.exists()


def test_dry_run_takes_true_or_false_only(requester_api):
    response = requester_api.post(f"{REQUESTS}?dry_run=maybe", {}, format="json")
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid_dry_run")


def test_a_stack_dry_run_shows_each_members_plan_in_the_order_they_would_run(requester_api):
    name = stack_name("dry")
    response = requester_api.post("/api/v1/stacks/?dry_run=true", queue_topic_role(name),
                                  format="json")

    assert response.status_code == 200, response.json()
    members = response.json()["members"]
    assert [m["key"] for m in members] == ["jobs", "audit", "events", "reader"]
    assert members[0]["plan"]["lines"][0] == f"will create sqs_queue krp-alpha-{name}-jobs"
    assert 'subscriptions: + [{"queue": {"ref": "jobs.name"}}]' in members[2]["plan"]["lines"]
    assert not Stack.objects.exists()
    assert DryRun.objects.get(name=name).resource_type == "stack"


def test_krp_submit_plan_prints_the_plan_and_records_nothing(requester, workers_in_process):
    created = submit(requester, unique_name("cli"), expect_new=True)
    execute_request(request_id=str(created.pk), task_id=created.task_id)

    shown = krp("submit", "--plan", "--user", "rita", "--env", "alpha", "--type", "s3_bucket",
                "--name", created.name, "--action", RequestAction.DELETE).stdout

    assert shown.splitlines() == [f"will delete s3_bucket {created.physical_name}"]
    assert not ResourceRequest.objects.filter(name=created.name,
                                              action=RequestAction.DELETE).exists()


def test_a_dry_run_shows_in_the_admin_to_its_team(requester_api, operator, client):
    from django.contrib.auth.models import Permission

    name = unique_name("seen")
    requester_api.post(f"{REQUESTS}?dry_run=true", {
        "environment": "alpha", "resource_type": "s3_bucket", "name": name}, format="json")
    operator.is_staff = True
    operator.save()
    operator.user_permissions.add(Permission.objects.get(codename="view_dryrun"))
    client.force_login(operator)

    listed = client.get("/admin/provisioning/dryrun/").content.decode()
    page = client.get(f"/admin/provisioning/dryrun/{DryRun.objects.get(name=name).pk}/change/")

    assert name in listed
    assert f"will create s3_bucket krp-alpha-{name}" in page.content.decode()
