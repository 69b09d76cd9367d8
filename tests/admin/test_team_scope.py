"""The admin's task results, reconcile runs and findings are scoped to the user's teams as
requests are; superusers see all.

Task results follow the request whose task id they carry; findings their resource's team
(orphans their krp:team tag); reconcile runs are shown to users whose teams have asked for
something in that environment.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from provisioning.models import Finding, ReconcileRun, Resource
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

TASK_RESULTS = reverse("admin:django_celery_results_taskresult_changelist")
RUNS = reverse("admin:provisioning_reconcilerun_changelist")
FINDINGS = reverse("admin:provisioning_finding_changelist")
VIEW = ["view_taskresult", "view_reconcilerun", "view_finding", "view_resourcerequest"]


def staff(name: str, team: Group) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(team)
    user.user_permissions.add(*Permission.objects.filter(codename__in=VIEW))
    return user


@pytest.fixture
def data_team(db) -> Group:
    return Group.objects.create(name="data")


@pytest.fixture
def vera(team) -> User:
    return staff("vera", team)


@pytest.fixture
def dora(data_team) -> User:
    return staff("dora", data_team)


def resource_for(request) -> Resource:
    return Resource.objects.create(
        environment=request.environment, resource_type="s3_bucket", name=request.name,
        physical_name=request.physical_name, physical_id=request.physical_name,
        arn=f"arn:aws:s3:::{request.physical_name}", team=request.team,
        created_by_request=request,
    )


@pytest.fixture
def two_teams(requester, data_team):
    """platform has a request (with its task result) and a resource in alpha; data has the
    same in prod. One reconcile run per environment, with a drift of each team's resource
    and an orphan tagged for each team."""
    dan = User.objects.create_user("dan")
    dan.groups.add(data_team)
    ours, theirs = submit(requester, "ours"), submit(dan, "theirs", environment="prod")
    for request in (ours, theirs):
        TaskResult.objects.create(task_id=request.task_id, task_name="krp.execute_request",
                                  status="SUCCESS", date_done=timezone.now())
    TaskResult.objects.create(task_id="sweep-task-0001", task_name="krp.sweep",
                              status="SUCCESS", date_done=timezone.now())
    runs = {}
    for request, team in ((ours, "platform"), (theirs, "data")):
        run = ReconcileRun.objects.create(environment=request.environment, triggered_by="beat",
                                          status="findings", checked=1)
        Finding.objects.create(run=run, kind="drifted", resource=resource_for(request),
                               resource_type="s3_bucket", arn=f"arn:drift:{team}")
        Finding.objects.create(run=run, kind="orphan", resource_type="s3_bucket",
                               arn=f"arn:orphan:{team}",
                               details={"tags": {"krp:team": team}})
        runs[team] = run
    return ours, theirs, runs


def listed(client, user, url) -> str:
    client.force_login(user)
    page = client.get(url)
    assert page.status_code == 200
    return page.content.decode()


def test_task_results_are_those_of_the_users_teams_requests(client, vera, two_teams):
    ours, theirs, _ = two_teams

    page = listed(client, vera, TASK_RESULTS)

    assert ours.task_id in page
    assert theirs.task_id not in page and "sweep-task-0001" not in page


def test_findings_are_those_of_the_users_teams_resources_and_tagged_orphans(client, dora,
                                                                          two_teams):
    page = listed(client, dora, FINDINGS)

    assert "arn:drift:data" in page and "arn:orphan:data" in page
    assert "arn:drift:platform" not in page and "arn:orphan:platform" not in page


def test_reconcile_runs_are_those_of_environments_the_users_teams_use(client, vera, dora,
                                                                     two_teams):
    _, _, runs = two_teams

    vera_runs = listed(client, vera, RUNS)
    run_page = client.get(reverse("admin:provisioning_reconcilerun_change",
                                  args=[runs["platform"].pk])).content.decode()
    other_run = client.get(reverse("admin:provisioning_reconcilerun_change",
                                   args=[runs["data"].pk]))

    assert "alpha" in vera_runs
    assert "prod" not in vera_runs
    assert "arn:drift:platform" in run_page and "arn:drift:data" not in run_page
    assert other_run.status_code == 302  # the admin's "does not exist" redirect
    assert "prod" in listed(client, dora, RUNS)


def test_a_superuser_sees_every_teams_results_runs_and_findings(client, two_teams):
    ours, theirs, _ = two_teams
    root = User.objects.create_superuser("root", password=None)

    results, findings, runs = (listed(client, root, url)
                               for url in (TASK_RESULTS, FINDINGS, RUNS))

    assert all(t in results for t in (ours.task_id, theirs.task_id, "sweep-task-0001"))
    assert all(arn in findings for arn in ("arn:drift:data", "arn:orphan:platform"))
    assert "alpha" in runs and "prod" in runs
