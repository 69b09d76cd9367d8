"""A request's ttl or expires_at, checked at submit with every other problem: one or the
other, in the future, within the environment's max_ttl, present where it requires one."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.errors import InvalidRequest
from provisioning.models import RequestAction
from tests.fixtures.inventory import resource_in
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db


def refusal(requester, **fields) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as refused:
        submit(requester, "ledger", **{"environment": "zeta", **fields})
    return refused.value


def test_a_ttl_beyond_the_environments_max_ttl_is_refused_naming_the_bound(requester):
    assert refusal(requester, ttl="8d").fields == {"ttl": ["at most 7d in zeta"]}


def test_an_expires_at_beyond_the_bound_is_refused(requester):
    far = timezone.now() + timedelta(days=8)

    assert refusal(requester, expires_at=far).fields == {
        "expires_at": ["at most 7d from now in zeta"]}


def test_a_create_without_a_ttl_where_one_is_required_is_refused(requester):
    assert refusal(requester).fields == {
        "ttl": ["zeta requires a ttl or expires_at (at most 7d)"]}


def test_ttl_and_expires_at_together_are_refused_naming_both(requester):
    fields = refusal(requester, ttl="1d", expires_at=timezone.now() + timedelta(days=1)).fields

    assert set(fields) == {"ttl", "expires_at"}


def test_an_expires_at_in_the_past_is_refused(requester):
    past = timezone.now() - timedelta(minutes=1)

    assert refusal(requester, expires_at=past).fields == {"expires_at": ["must be in the future"]}


def test_a_ttl_that_is_not_a_duration_is_refused_with_the_forms_it_takes(requester):
    (problem,) = refusal(requester, ttl="a week").fields["ttl"]

    assert "30s, 15m, 2h, 7d, 2w" in problem


def test_lifetime_problems_are_reported_with_the_others(requester):
    fields = refusal(requester, ttl="8d", tags={"krp:team": "x"}).fields

    assert set(fields) == {"ttl", "tags.krp:team"}


def test_a_delete_takes_no_ttl(requester):
    resource_in(requester, "ledger")

    with pytest.raises(InvalidRequest) as refused:
        submit(requester, "ledger", action=RequestAction.DELETE, ttl="1d")

    assert refused.value.fields == {"ttl": ["a delete takes no ttl or expires_at"]}


def test_a_request_records_the_ttl_it_asked_for(requester):
    request = submit(requester, "ledger", environment="zeta", ttl="1d12h")

    assert (request.ttl, request.expires_at) == (timedelta(hours=36), None)


def test_an_update_needs_no_ttl_where_creates_do(requester):
    resource_in(requester, "ledger", environment="zeta", ttl="1d")

    update = submit(requester, "ledger", environment="zeta", action=RequestAction.UPDATE,
                    spec={"versioning": True})

    assert update.ttl is None
