"""What the operator's buttons do alike on every record's page that has them (a request's,
a stack's): approve is offered only to whoever may approve someone else's record, and a
press the rules refuse, or that is not a POST, or on another team's record, changes
nothing and says why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, User
from django.db.models import Model
from django.urls import reverse

from provisioning.services import stack_submit
from tests.admin.conftest import action_url, buttons_on, messages_of, press
from tests.fixtures.requests import submit
from tests.fixtures.stacks import queue_topic_role, stack_name

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Kind:
    """A kind of record with buttons: how the messages name it, and how a user submits
    one (named after a stem) that waits for approval, in prod."""

    noun: str
    submit_waiting: Callable[[User, str], Model]

    def waiting(self, user: User, stem: str = "needs-ok") -> Model:
        return self.submit_waiting(user, stack_name(stem))


KINDS = [
    Kind("request", lambda user, name: submit(user, name, environment="prod")),
    Kind("stack", lambda user, name: stack_submit(user=user, document=queue_topic_role(
        name, environment="prod"))[0]),
]


@pytest.fixture(params=KINDS, ids=[kind.noun for kind in KINDS])
def kind(request) -> Kind:
    return request.param


def still_waiting(record: Model) -> bool:
    record.refresh_from_db()
    return record.status == "pending_approval"


def test_a_record_waiting_for_approval_offers_approve_and_cancel(client, staff_operator,
                                                                 requester, kind):
    waiting = kind.waiting(requester)
    client.force_login(staff_operator)

    assert buttons_on(client, waiting) == {"approve", "cancel"}


def test_approve_is_not_offered_without_the_permission_or_on_ones_own_record(
    client, staff_operator, staff_viewer, requester, kind
):
    theirs = kind.waiting(requester)
    own = kind.waiting(staff_operator, "mine")

    client.force_login(staff_viewer)
    assert buttons_on(client, theirs) == {"cancel"}
    client.force_login(staff_operator)
    assert buttons_on(client, own) == {"cancel"}


def test_approving_ones_own_record_by_post_is_refused_with_a_message(client, staff_operator,
                                                                     kind):
    own = kind.waiting(staff_operator)
    client.force_login(staff_operator)

    page = press(client, own, "approve")

    assert page.status_code == 200 and still_waiting(own)
    assert f"a requester cannot approve their own {kind.noun}" in messages_of(page)[0]


def test_approving_without_the_permission_by_post_is_refused_with_a_message(
    client, staff_viewer, requester, kind
):
    waiting = kind.waiting(requester)
    client.force_login(staff_viewer)

    page = press(client, waiting, "approve")

    assert page.status_code == 200 and still_waiting(waiting)
    assert "needs the approve_resourcerequest permission" in messages_of(page)[0]


def test_another_teams_record_is_not_listed_and_cannot_be_pressed(client, staff_operator,
                                                                  django_user_model, kind):
    stranger = django_user_model.objects.create_user("sam")
    stranger.groups.add(Group.objects.create(name="data"))
    theirs = kind.waiting(stranger)
    client.force_login(staff_operator)

    listed = client.get(reverse(f"admin:provisioning_{theirs._meta.model_name}_changelist"))
    page = press(client, theirs, "cancel")

    assert theirs.name not in listed.content.decode()
    assert page.status_code == 200 and still_waiting(theirs)
    assert "doesn’t exist" in messages_of(page)[0]


def test_the_buttons_answer_only_post(client, staff_operator, requester, kind):
    waiting = kind.waiting(requester)
    client.force_login(staff_operator)

    answer = client.get(action_url(waiting, "approve"))

    assert answer.status_code == 405 and still_waiting(waiting)
