"""Submitting a request: what is refused, with a message that names the offending field,
and what an accepted request acts on. A refused request records nothing."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from provisioning.errors import Conflict, InvalidRequest, NotAllowed
from provisioning.models import (
    RequestEvent,
    RequestStatus,
    Resource,
    ResourceRequest,
    ResourceStatus,
)
from provisioning.resources.base import ENVIRONMENT, MANAGED_BY, REQUEST_ID, TEAM
from provisioning.services.transitions import transition
from tests.fixtures.requests import submit

pytestmark = pytest.mark.django_db

TYPES = ["s3_bucket", "sqs_queue", "sns_topic", "dynamodb_table", "iam_role"]
TABLE_SPEC = {"partition_key": {"name": "id", "type": "S"}}
# A valid spec of each type, for tests about something else.
VALID_SPEC = {"dynamodb_table": TABLE_SPEC,
              "iam_role": {"trusted_service": "lambda.amazonaws.com"}}


def live_resource(user, *, resource_type="s3_bucket", name="orders", spec=None, tags=None):
    """A resource KRP manages in alpha, as a finished create leaves it in the inventory."""
    request = submit(user, resource_type=resource_type, name=name, spec=spec, tags=tags)
    transition(request.pk, from_statuses=["queued"], to="running", actor="worker")
    transition(request.pk, from_statuses=["running"], to="succeeded", actor="worker")
    return Resource.objects.create(
        environment=request.environment,
        resource_type=request.resource_type,
        name=request.name,
        physical_name=request.physical_name,
        physical_id=request.physical_name,
        arn=f"arn:aws:{resource_type}:ap-northeast-2:111111111111:{request.physical_name}",
        spec=request.spec,
        tags={
            **request.tags,
            MANAGED_BY: "krp",
            REQUEST_ID: str(request.pk),
            ENVIRONMENT: request.environment,
            TEAM: request.team.name,
        },
        team=request.team,
        created_by_request=request,
    )


@contextmanager
def refused(error, code, *phrases):
    """The block raises `error` with `code`, its message says each phrase, nothing is saved."""
    before = (ResourceRequest.objects.count(), RequestEvent.objects.count())
    with pytest.raises(error) as caught:
        yield caught
    assert caught.value.code == code
    for phrase in phrases:
        assert phrase in caught.value.message
    assert (ResourceRequest.objects.count(), RequestEvent.objects.count()) == before


@pytest.fixture
def colleague():
    """Someone of another team, "data"."""
    user = User.objects.create_user("dana")
    user.groups.add(Group.objects.create(name="data"))
    return user


# -- the body alone -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code", "phrases"),
    [
        pytest.param(
            {"environment": "staging"}, "unknown_environment",
            ["environment: 'staging' is not a known environment", "known: alpha, prod"],
            id="unknown environment, listing the known ones",
        ),
        pytest.param(
            {"resource_type": "ec2_instance"}, "unknown_resource_type",
            ["resource_type: 'ec2_instance' is not a known type",
             "known: dynamodb_table, iam_role, s3_bucket, sns_topic, sqs_queue"],
            id="unknown resource type, listing the known ones",
        ),
        pytest.param(
            {"action": "rename"}, "invalid_action",
            ["action: 'rename' is not one of create, update, delete"],
            id="unknown action",
        ),
    ],
)
def test_unknown_environment_type_or_action_is_refused(requester, fields, code, phrases):
    with refused(InvalidRequest, code, *phrases):
        submit(requester, **fields)


@pytest.mark.parametrize("resource_type", TYPES)
@pytest.mark.parametrize(
    ("name", "why"),
    [
        pytest.param("Orders", "use lowercase letters", id="uppercase"),
        pytest.param("1orders", "starting with a letter", id="starts with a digit"),
        pytest.param("orders-", "not ending with a dash", id="ends with a dash"),
        pytest.param("my_orders", "digits and dashes", id="underscore"),
        pytest.param("my orders", "digits and dashes", id="space"),
        pytest.param("", "starting with a letter", id="empty"),
        pytest.param(42, "starting with a letter", id="not a string"),
        pytest.param("ab", "3 to 40 characters", id="too short"),
        pytest.param("a" * 41, "3 to 40 characters", id="too long"),
    ],
)
def test_name_not_valid_for_the_type_is_refused(requester, resource_type, name, why):
    with refused(InvalidRequest, "invalid_name", f"name: {name!r} is not valid for "
                 f"{resource_type}", why):
        submit(requester, resource_type=resource_type, name=name,
               spec=VALID_SPEC.get(resource_type))


@pytest.mark.parametrize(
    ("resource_type", "spec", "phrase"),
    [
        pytest.param("s3_bucket", {"versioning": "yes"},
                     "spec.versioning: Input should be a valid boolean", id="string for a bool"),
        pytest.param("sqs_queue", {"visibility_timeout_seconds": "30"},
                     "spec.visibility_timeout_seconds: Input should be a valid integer",
                     id="string for a number is not coerced"),
        pytest.param("dynamodb_table", {"partition_key": "id"},
                     "spec.partition_key: Input should be a JSON object",
                     id="string for an object"),
        pytest.param("sns_topic", {"subscriptions": {"queue": "jobs"}},
                     "spec.subscriptions: Input should be a valid list", id="object for a list"),
        pytest.param("s3_bucket", {"colour": "blue"},
                     "spec.colour: Extra inputs are not permitted", id="unknown field"),
        pytest.param("sqs_queue", {"dead_letter_queue": {"max_receive_count": 3, "name": "x"}},
                     "spec.dead_letter_queue.name: Extra inputs are not permitted",
                     id="unknown nested field"),
        pytest.param("s3_bucket", ["versioning"], "spec: must be a JSON object",
                     id="a list for the spec"),
        pytest.param("s3_bucket", "versioning", "spec: must be a JSON object",
                     id="a string for the spec"),
    ],
)
def test_spec_that_does_not_fit_the_type_is_refused(requester, resource_type, spec, phrase):
    with refused(InvalidRequest, "invalid_spec", phrase):
        submit(requester, resource_type=resource_type, spec=spec)


@pytest.mark.parametrize(
    ("tags", "phrase"),
    [
        pytest.param(["owner=rita"], "tags: must be an object", id="a list"),
        pytest.param("owner=rita", "tags: must be an object", id="a string"),
        pytest.param({"cost-centre": 42}, "tags.cost-centre: must be a string",
                     id="a number for a value"),
        pytest.param({"krp:team": "data"}, "tags.krp:team: keys starting with krp: or aws: "
                     "are reserved", id="reserved krp: key"),
        pytest.param({"aws:cloudformation:stack-name": "x"},
                     "tags.aws:cloudformation:stack-name: keys starting with krp: or aws: are "
                     "reserved", id="reserved aws: key"),
        # AWS reserves the prefix in any case, so AWS would refuse it later.
        pytest.param({"AWS:owner": "rita"}, "tags.AWS:owner: keys starting with krp: or aws: "
                     "are reserved", id="reserved aws: key in capitals"),
        pytest.param({"": "rita"}, "keys are 1-128 characters", id="empty key"),
        pytest.param({"owner": "r" * 257}, "tags.owner: keys are 1-128 characters, values up "
                     "to 256", id="value too long"),
        pytest.param({f"tag-{i}": "x" for i in range(41)}, "tags: at most 40 tags",
                     id="too many"),
    ],
)
def test_tags_that_are_not_plain_user_tags_are_refused(requester, tags, phrase):
    with refused(InvalidRequest, "invalid_tags", phrase):
        submit(requester, tags=tags)


def test_deadline_in_the_past_is_refused(requester):
    with refused(InvalidRequest, "invalid_deadline", "deadline: must be in the future"):
        submit(requester, deadline=timezone.now() - timedelta(minutes=1))


def test_deadline_before_not_before_is_refused(requester):
    now = timezone.now()

    with refused(InvalidRequest, "invalid_deadline", "deadline: must be after not_before"):
        submit(requester, not_before=now + timedelta(hours=2), deadline=now + timedelta(hours=1))


# -- who asks -----------------------------------------------------------------------------


def test_user_in_no_team_is_not_allowed_to_submit(db):
    loner = User.objects.create_user("lone")

    with refused(NotAllowed, "no_team", "you belong to no team"):
        submit(loner)


def test_user_in_several_teams_must_say_which(requester, colleague):
    requester.groups.add(Group.objects.get(name="data"))

    with refused(InvalidRequest, "invalid_team", "team: you belong to data, platform; say which"):
        submit(requester)


@pytest.mark.parametrize("as_group", [False, True], ids=["by name", "as a group"])
def test_naming_a_team_the_user_is_not_in_is_refused(requester, colleague, as_group):
    named = Group.objects.get(name="data") if as_group else "data"

    with refused(InvalidRequest, "invalid_team", "team: you are not a member of 'data'"):
        submit(requester, team=named)


def test_naming_a_team_that_does_not_exist_is_refused(requester):
    with refused(InvalidRequest, "invalid_team", "team: you are not a member of 'nobody'"):
        submit(requester, team="nobody")


def test_team_is_chosen_automatically_when_the_user_has_one(requester, team):
    request = submit(requester)

    assert request.team == team


def test_user_in_several_teams_submits_for_the_team_named(requester, colleague):
    requester.groups.add(Group.objects.get(name="data"))

    request = submit(requester, team="data")

    assert request.team.name == "data"


# -- what the request acts on -------------------------------------------------------------


def test_create_of_a_resource_that_already_exists_is_a_conflict(requester):
    live = live_resource(requester)

    with refused(Conflict, "already_exists",
                 f"s3_bucket alpha/orders already exists (resource {live.pk}); submit an update"):
        submit(requester)


def test_a_taken_name_is_refused_to_another_team_without_showing_the_owners_ids(
    requester, colleague
):
    live = live_resource(requester)

    with refused(Conflict, "already_exists", "already exists (another team's)") as caught:
        submit(colleague)
    assert str(live.pk) not in caught.value.message
    assert str(live.created_by_request_id) not in caught.value.message


def test_create_of_the_same_name_in_another_environment_is_accepted(requester):
    live_resource(requester)

    request = submit(requester, environment="prod")

    assert request.status == RequestStatus.PENDING_APPROVAL


def test_create_after_the_resource_was_deleted_is_accepted(requester):
    live = live_resource(requester)
    Resource.objects.filter(pk=live.pk).update(status=ResourceStatus.DELETED)

    request = submit(requester)

    assert request.action == "create"
    assert request.resource is None


@pytest.mark.parametrize("action", ["update", "delete"])
def test_update_or_delete_of_a_resource_that_does_not_exist_is_refused(requester, action):
    with refused(InvalidRequest, "unknown_resource",
                 "name: s3_bucket alpha/orders does not exist; create it first"):
        submit(requester, action=action)


@pytest.mark.parametrize("action", ["update", "delete"])
def test_update_or_delete_of_a_deleted_resource_is_refused(requester, action):
    live = live_resource(requester)
    Resource.objects.filter(pk=live.pk).update(status=ResourceStatus.DELETED)

    with refused(InvalidRequest, "unknown_resource",
                 "name: s3_bucket alpha/orders does not exist"):
        submit(requester, action=action)


@pytest.mark.parametrize(
    ("resource_type", "created", "asked", "phrase"),
    [
        pytest.param("sqs_queue", {"fifo": True}, {"fifo": False},
                     "spec.fifo: cannot change after creation (is true, asked false)",
                     id="sqs_queue fifo"),
        pytest.param("sns_topic", {}, {"fifo": True},
                     "spec.fifo: cannot change after creation (is false, asked true)",
                     id="sns_topic fifo"),
        pytest.param("dynamodb_table", TABLE_SPEC,
                     {"partition_key": {"name": "order_id", "type": "S"}},
                     "spec.partition_key: cannot change after creation",
                     id="dynamodb partition_key"),
        pytest.param("dynamodb_table", TABLE_SPEC,
                     {**TABLE_SPEC, "sort_key": {"name": "created", "type": "N"}},
                     "spec.sort_key: cannot change after creation", id="dynamodb sort_key added"),
    ],
)
def test_update_that_changes_a_field_fixed_at_creation_is_refused(
    requester, resource_type, created, asked, phrase
):
    live_resource(requester, resource_type=resource_type, spec=created)

    with refused(InvalidRequest, "immutable_field", phrase):
        submit(requester, resource_type=resource_type, action="update", spec=asked)


def test_update_of_mutable_fields_is_accepted(requester):
    live = live_resource(requester, resource_type="sqs_queue", spec={"fifo": True})

    request = submit(requester, resource_type="sqs_queue", action="update",
                     spec={"fifo": True, "visibility_timeout_seconds": 120})

    assert request.resource == live
    assert request.spec["visibility_timeout_seconds"] == 120


@pytest.mark.parametrize("action", ["update", "delete"])
def test_update_or_delete_of_another_teams_resource_is_not_allowed(
    requester, colleague, action
):
    live_resource(colleague)

    with refused(NotAllowed, "other_team", "s3_bucket alpha/orders belongs to another team"):
        submit(requester, action=action)


@pytest.mark.parametrize(
    ("environment", "status"),
    [("alpha", "queued"), ("prod", "pending_approval")],
)
def test_second_request_while_one_is_in_flight_is_a_conflict(requester, environment, status):
    first = submit(requester, environment=environment)

    with refused(Conflict, "request_in_flight",
                 f"s3_bucket {environment}/orders already has request {first.pk} in flight "
                 f"({status}); wait for it or cancel it"):
        submit(requester, environment=environment, spec={"versioning": True})


def test_request_while_an_update_runs_is_a_conflict(requester):
    live_resource(requester)
    update = submit(requester, action="update", spec={"versioning": True})
    transition(update.pk, from_statuses=["queued"], to="running", actor="worker")

    with refused(Conflict, "request_in_flight", f"request {update.pk} in flight (running)"):
        submit(requester, action="delete")


def test_delete_with_a_spec_is_refused(requester):
    live_resource(requester)

    with refused(InvalidRequest, "invalid_spec", "spec: a delete request takes no spec"):
        submit(requester, action="delete", spec={"versioning": True})


def test_sns_topic_subscribing_a_queue_krp_does_not_manage_is_refused(requester):
    with refused(InvalidRequest, "unknown_reference",
                 "spec: refers to sqs_queue 'ghost', which KRP does not manage in alpha"):
        submit(requester, resource_type="sns_topic", name="events",
               spec={"subscriptions": [{"queue": "ghost"}]})


def test_sns_topic_subscribing_a_queue_of_another_environment_is_refused(requester):
    prod_queue = submit(requester, environment="prod", resource_type="sqs_queue", name="jobs")
    Resource.objects.create(
        environment="prod", resource_type="sqs_queue", name="jobs",
        physical_name=prod_queue.physical_name, physical_id=prod_queue.physical_name,
        arn="arn:aws:sqs:ap-northeast-2:222222222222:krp-prod-jobs",
        team=prod_queue.team, created_by_request=prod_queue,
    )

    with refused(InvalidRequest, "unknown_reference",
                 "spec: refers to sqs_queue 'jobs', which KRP does not manage in alpha"):
        submit(requester, resource_type="sns_topic", name="events",
               spec={"subscriptions": [{"queue": "jobs"}]})


def test_sns_topic_subscribing_a_managed_queue_is_accepted(requester):
    live_resource(requester, resource_type="sqs_queue", name="jobs")

    request = submit(requester, resource_type="sns_topic", name="events",
                     spec={"subscriptions": [{"queue": "jobs"}]})

    assert request.spec["subscriptions"] == [{"queue": "jobs", "raw_message_delivery": False}]


def test_update_without_tags_keeps_the_resources_user_tags(requester):
    live = live_resource(requester, tags={"owner": "rita", "cost-centre": "42"})

    request = submit(requester, action="update", spec={"versioning": True})

    assert request.resource == live
    assert request.tags == {"owner": "rita", "cost-centre": "42"}


def test_update_with_tags_replaces_the_user_tags(requester):
    live_resource(requester, tags={"owner": "rita", "cost-centre": "42"})

    request = submit(requester, action="update", tags={"owner": "otto"})

    assert request.tags == {"owner": "otto"}


def test_delete_acts_on_the_live_resource(requester):
    live = live_resource(requester, resource_type="sqs_queue", spec={"fifo": True},
                         tags={"owner": "rita"})

    request = submit(requester, resource_type="sqs_queue", action="delete")

    assert request.resource == live
    assert request.action == "delete"
    assert request.spec == {}
    # The physical name follows the live spec: a FIFO queue's ends in .fifo.
    assert request.physical_name == live.physical_name == "krp-alpha-orders.fifo"
    assert request.tags == {"owner": "rita"}
