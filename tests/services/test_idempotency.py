"""Idempotency keys on submit: a client's retry gets the request it already made, and a key
reused for something else is refused rather than silently answered with the first request."""

import pytest
from django.contrib.auth.models import User

from provisioning.errors import Conflict, InvalidRequest
from provisioning.models import RequestEvent, Resource, ResourceRequest
from provisioning.services import request_submit
from provisioning.services.transitions import transition
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

KEY = "deploy-4711"


def recorded():
    return ResourceRequest.objects.count(), RequestEvent.objects.count()


def test_retry_with_the_same_key_and_body_returns_the_first_request(requester):
    first, created = request_submit(user=requester, environment="alpha",
                                    resource_type="s3_bucket", name="orders",
                                    spec={"versioning": True}, idempotency_key=KEY)

    again, created_again = request_submit(user=requester, environment="alpha",
                                          resource_type="s3_bucket", name="orders",
                                          spec={"versioning": True}, idempotency_key=KEY)

    assert created is True
    assert created_again is False
    assert again.pk == first.pk
    assert again.task_id == first.task_id
    assert recorded() == (1, 1)  # no second request, no second "submitted" event


def test_retry_after_the_first_request_finished_still_returns_it(requester):
    first = submit(requester, idempotency_key=KEY)
    transition(first.pk, from_statuses=["queued"], to="running", actor="worker")
    transition(first.pk, from_statuses=["running"], to="succeeded", actor="worker")
    Resource.objects.create(
        environment="alpha", resource_type="s3_bucket", name="orders",
        physical_name=first.physical_name, physical_id=first.physical_name,
        arn=f"arn:aws:s3:::{first.physical_name}", team=first.team, created_by_request=first,
    )
    before = recorded()

    # Not "already exists": the client is asking about the request it already made.
    again, created = request_submit(user=requester, environment="alpha",
                                    resource_type="s3_bucket", name="orders",
                                    idempotency_key=KEY)

    assert (again.pk, created) == (first.pk, False)
    assert again.status == "succeeded"
    assert recorded() == before


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({"spec": {"versioning": False}}, id="spec"),
        pytest.param({"name": "invoices"}, id="name"),
        pytest.param({"environment": "prod"}, id="environment"),
        pytest.param({"tags": {"owner": "otto"}}, id="tags"),
    ],
)
def test_same_key_with_a_different_body_is_a_conflict_naming_the_first_request(
    requester, changed
):
    body = {"spec": {"versioning": True}, "tags": {"owner": "rita"}}
    first = submit(requester, idempotency_key=KEY, **body)

    with pytest.raises(Conflict) as caught:
        submit(requester, idempotency_key=KEY, **{**body, **changed})

    assert caught.value.code == "idempotency_key_reused"
    assert f"Idempotency-Key 'deploy-4711' was already used for request {first.pk}" in (
        caught.value.message
    )
    assert recorded() == (1, 1)


def test_update_that_clears_the_tags_is_not_a_retry_of_one_that_keeps_them(requester):
    first = submit(requester, tags={"owner": "rita"})
    transition(first.pk, from_statuses=["queued"], to="running", actor="worker")
    transition(first.pk, from_statuses=["running"], to="succeeded", actor="worker")
    Resource.objects.create(
        environment="alpha", resource_type="s3_bucket", name="orders",
        physical_name=first.physical_name, physical_id=first.physical_name,
        arn=f"arn:aws:s3:::{first.physical_name}", tags={"owner": "rita"},
        team=first.team, created_by_request=first,
    )
    keep = submit(requester, action="update", idempotency_key=KEY)
    assert keep.tags == {"owner": "rita"}

    # tags omitted keeps them, tags {} removes them: two different asks.
    with pytest.raises(Conflict) as caught:
        submit(requester, action="update", tags={}, idempotency_key=KEY)

    assert caught.value.code == "idempotency_key_reused"


def test_same_key_from_another_user_is_another_request(requester, team):
    colleague = User.objects.create_user("cole")
    colleague.groups.add(team)
    first = submit(requester, idempotency_key=KEY)

    theirs, created = request_submit(user=colleague, environment="alpha",
                                     resource_type="s3_bucket", name="invoices",
                                     idempotency_key=KEY)

    assert created is True
    assert theirs.pk != first.pk
    assert theirs.requested_by == colleague
    assert recorded() == (2, 2)


def test_same_key_and_body_from_another_user_does_not_hand_over_the_first_request(
    requester, team
):
    colleague = User.objects.create_user("cole")
    colleague.groups.add(team)
    submit(requester, idempotency_key=KEY)

    # Judged as their own new request: the same bucket already has one in flight.
    with pytest.raises(Conflict) as caught:
        submit(colleague, idempotency_key=KEY)

    assert caught.value.code == "request_in_flight"
    assert recorded() == (1, 1)


def test_without_a_key_two_submissions_are_two_requests(requester):
    first, created_first = request_submit(user=requester, environment="alpha",
                                          resource_type="s3_bucket", name="orders")
    second, created_second = request_submit(user=requester, environment="alpha",
                                            resource_type="s3_bucket", name="invoices")

    assert created_first is created_second is True
    assert first.pk != second.pk
    assert first.idempotency_key is None and second.idempotency_key is None
    assert recorded() == (2, 2)


def test_a_key_whose_first_use_was_refused_is_free_for_the_corrected_request(requester):
    with pytest.raises(InvalidRequest):
        submit(requester, spec={"versioning": "yes"}, idempotency_key=KEY)

    request, created = request_submit(user=requester, environment="alpha",
                                      resource_type="s3_bucket", name="orders",
                                      spec={"versioning": True}, idempotency_key=KEY)

    assert created is True
    assert request.idempotency_key == KEY


def test_a_replay_by_someone_who_has_left_the_team_is_not_found(requester, team):
    from django.contrib.auth.models import Group

    from provisioning.errors import NotFound

    first = submit(requester, idempotency_key=KEY)
    requester.groups.remove(team)
    requester.groups.add(Group.objects.create(name="data"))

    with pytest.raises(NotFound) as caught:
        submit(requester, idempotency_key=KEY)

    assert str(first.pk) not in caught.value.message
    assert recorded() == (1, 1)
