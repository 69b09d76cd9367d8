"""Staff users of the `platform` team, as operators sign in to the admin; records a
request leaves behind (its resource, its task result, a reconcile run and its finding);
and the operator's buttons on a record's page, seen and pressed as a browser does."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from provisioning.admin.display import change_url
from provisioning.models import Resource, ResourceRequest
from provisioning.services.transitions import transition

# Every permission on every model the admin shows (add, change, delete, view), but not
# approve: read-only pages must stay read-only even for a user the permissions allow.
EVERY_MODEL = ["resourcerequest", "resource", "requestevent", "reconcilerun", "finding",
               "taskresult", "stack", "stackmember", "stackevent", "blueprint",
               "blueprintversion"]


def make_staff(user: User) -> User:
    user.is_staff = True
    user.save()
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=[f"{verb}_{model}" for verb in ("add", "change", "delete", "view")
                      for model in EVERY_MODEL]))
    return User.objects.get(pk=user.pk)  # fresh: permissions are cached per instance

# The operator's buttons a record's page may show (a request's, a stack's).
BUTTONS = ("approve", "cancel", "retry", "delete")



@pytest.fixture
def staff_operator(operator):
    """otto: on call for `platform`, with the approve permission."""
    return make_staff(operator)


@pytest.fixture
def staff_viewer(team):
    """vera: staff of `platform` without the approve permission."""
    user = User.objects.create_user("vera")
    user.groups.add(team)
    return make_staff(user)


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", "root@example.org", password=None)


def succeed(request: ResourceRequest, *, arn: str | None = None) -> Resource:
    """Carry a queued create to success as the worker's services leave it: the request
    succeeded, its resource in the inventory, its run's task result recorded."""
    arn = arn or f"arn:aws:s3:::{request.physical_name}"
    transition(request.pk, from_statuses=["queued"], to="running", actor="worker")
    transition(request.pk, from_statuses=["running"], to="succeeded", actor="worker",
               outputs={"arn": arn})
    resource = Resource.objects.create(
        environment=request.environment, resource_type=request.resource_type,
        name=request.name, physical_name=request.physical_name,
        physical_id=request.physical_name, arn=arn, team=request.team,
        created_by_request=request,
    )
    ResourceRequest.objects.filter(pk=request.pk).update(resource=resource)
    TaskResult.objects.create(task_id=request.task_id, task_name="krp.execute_request",
                              status="SUCCESS", date_done=timezone.now())
    request.refresh_from_db()
    return resource


def fail(request: ResourceRequest, *, code: str, message: str) -> ResourceRequest:
    """A queued request's run ends in failure with this error."""
    transition(request.pk, from_statuses=["queued"], to="running", actor="worker")
    return transition(request.pk, from_statuses=["running"], to="failed", actor="worker",
                      message=f"{code}: {message}", error_code=code, error_message=message)


def action_url(record: Model, action: str) -> str:
    """The admin URL a button on the record's page posts to."""
    return reverse(f"admin:{record._meta.app_label}_{record._meta.model_name}_{action}",
                   args=[record.pk])


def press(client, record: Model, action: str):
    """Press a button on the record's page (its POST), and follow back to the page."""
    return client.post(action_url(record, action), follow=True)


def buttons_on(client, record: Model) -> set[str]:
    page = client.get(change_url(record))
    assert page.status_code == 200
    text = page.content.decode()
    return {name for name in BUTTONS if f'id="krp-{name}"' in text}


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]
