"""Reconcile at fleet scale: existence and tags from the listing in a few calls, a rotating
deep check that reaches every resource within its window, one resource's failure never
stopping the run, and parallel describes that stay within the environment's call budget.

A fleet of SQS queues is made once for the module by the provisioner itself (so each is
exactly what its spec makes), tagged as one request's; each test writes its own inventory
rows for them. They are deleted again at the end.
"""

import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from dependency_injector import providers
from django.utils import timezone

from provisioning.cloud import CloudClients
from provisioning.models import FindingKind, ReconcileRun, Resource, ResourceStatus
from provisioning.resources import REGISTRY
from provisioning.resources.base import list_by_tag
from provisioning.services.reconcile import reconcile
from tests.fixtures.provisioning import make_context, unique_name
from tests.fixtures.requests import submit
from tests.services.test_reconcile import finding_for, made

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

FLEET_SIZE = 250
SQS = REGISTRY["sqs_queue"]


@pytest.fixture(scope="module")
def fleet(sandbox, krp_settings):
    """FLEET_SIZE SQS queues in alpha, as KRP made them: (name, what describe() sees)."""
    clients = CloudClients(krp_settings)
    creating_request = str(uuid.uuid4())

    def make(name):
        ctx = make_context(krp_settings, clients, kind=SQS, name=name,
                           creating_request_id=creating_request)
        return name, ctx, SQS.create(ctx, SQS.parse_spec({}))

    with ThreadPoolExecutor(8) as pool:
        queues = list(pool.map(make, [unique_name("fleet") for _ in range(FLEET_SIZE)]))
    yield [(name, observed) for name, _, observed in queues]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda queue: SQS.delete(queue[1]), queues))


def inventory_of(fleet, user, **fields) -> list[Resource]:
    """Inventory rows for the fleet, as its creates would have left them."""
    request = submit(user, unique_name("fleet"), resource_type="sqs_queue", spec={})
    return Resource.objects.bulk_create([
        Resource(environment="alpha", resource_type="sqs_queue", name=name,
                 physical_name=observed.physical_id.rsplit("/", 1)[-1],
                 physical_id=observed.physical_id, arn=observed.arn, spec={},
                 tags=observed.tags, outputs=observed.outputs(), team=request.team,
                 created_by_request=request, **fields)
        for name, observed in fleet
    ])


@pytest.fixture
def every_hour_within_six(long_lease, container, krp_settings):
    """Reconcile every 600 s, every resource deep-checked within an hour: 6 runs a window."""
    container.settings.override(providers.Object(krp_settings.model_copy(update={
        "lease_seconds": 600, "reconcile_interval_seconds": 600,
        "reconcile_deep_window_hours": 1})))
    container.reset_singletons()


@pytest.mark.usefixtures("every_hour_within_six")
def test_the_rotation_deep_checks_every_resource_once_within_the_window(fleet, requester):
    resources = inventory_of(fleet[:120], requester)
    described_in: list[set] = []

    for _ in range(7):  # one window of 6 runs, and the first run of the next
        before = dict(Resource.objects.filter(pk__in=[r.pk for r in resources])
                      .values_list("pk", "last_deep_checked_at"))
        run = reconcile(environment="alpha")
        after = dict(Resource.objects.filter(pk__in=[r.pk for r in resources])
                     .values_list("pk", "last_deep_checked_at"))
        described_in.append({pk for pk in after if after[pk] != before[pk]})
        assert run.deep_checked == 20  # 120 resources / 6 runs
        assert finding_for(run, resources[0].arn) is None

    window = described_in[:6]
    assert sum(len(run) for run in window) == 120
    assert set().union(*window) == {r.pk for r in resources}  # each once within the window
    assert described_in[6] == described_in[0]  # then again, oldest first


def test_existence_and_tags_of_250_resources_take_a_few_listing_calls(
    fleet, requester, sandbox, cloud, krp_settings
):
    # Each deep-checked just now, so the rotation's share (11 of 250 a run) is all that
    # is described; the listing vouches for the rest.
    inventory_of(fleet, requester, last_deep_checked_at=timezone.now())
    listed = len(list_by_tag(cloud, "alpha"))  # with what other tests left in alpha
    ctx = make_context(krp_settings, cloud, kind=SQS, name=fleet[0][0])
    sqs_before = sandbox.calls("sqs")
    SQS.describe(ctx)
    calls_per_describe = sandbox.calls("sqs") - sqs_before
    before = sandbox._call("/_krp/calls")["calls"]

    run = reconcile(environment="alpha")

    after = sandbox._call("/_krp/calls")["calls"]
    made_calls = {service: after[service] - before.get(service, 0) for service in after
                  if after[service] != before.get(service, 0)}
    assert not run.error
    assert (run.checked, run.deep_checked) == (250, 11)
    assert made_calls["tagging"] <= math.ceil(listed / 100) + 1
    assert made_calls["sqs"] == 11 * calls_per_describe  # none for the 239 listed as recorded
    assert run.aws_calls["resourcegroupstaggingapi"] == made_calls["tagging"]
    assert run.aws_calls["sqs"] == made_calls["sqs"]
    assert not run.findings.filter(resource__isnull=False).exists()


def test_missing_is_confirmed_by_a_describe_not_by_absence_from_the_listing(
    fleet, requester, cloud
):
    inventory_of(fleet, requester, last_deep_checked_at=timezone.now())
    untagged, deleted = made(requester, "sqs_queue"), made(requester, "sqs_queue")
    # Both last in the rotation: only their absence from the listing gets them described.
    Resource.objects.filter(pk__in=[untagged.pk, deleted.pk]).update(
        last_deep_checked_at=timezone.now())
    sqs = cloud.client("alpha", "sqs")
    sqs.untag_queue(QueueUrl=untagged.physical_id, TagKeys=["krp:environment"])
    sqs.delete_queue(QueueUrl=deleted.physical_id)

    run = reconcile(environment="alpha")

    assert run.deep_checked == 13  # the share of 11, and the two the listing lacks
    assert finding_for(run, deleted.arn).kind == FindingKind.MISSING
    still_there = finding_for(run, untagged.arn)
    assert still_there.kind == FindingKind.DRIFTED
    assert still_there.details["tags.krp:environment"] == {"expected": "alpha", "actual": None}


def test_a_resource_whose_describe_fails_is_an_error_and_the_others_are_still_fixed(
    requester, cloud, sandbox_faults
):
    bucket = made(requester)
    queues = [made(requester, "sqs_queue") for _ in range(3)]
    sqs = cloud.client("alpha", "sqs")
    for queue in queues:
        sqs.tag_queue(QueueUrl=queue.physical_id, Tags={"owner": "someone-else"})
    sandbox_faults.set_faults(deny_actions=["GetBucketVersioning"])

    run = reconcile(environment="alpha", fix=True)

    assert run.status == ReconcileRun.Status.FINDINGS and not run.error
    error = finding_for(run, bucket.arn)
    assert error.kind == FindingKind.ERROR
    assert error.details["during"] == "describe" and error.details["code"] == "AccessDenied"
    for queue in queues:
        assert finding_for(run, queue.arn).action_taken == "re-applied the spec and tags"
        assert sqs.list_queue_tags(QueueUrl=queue.physical_id)["Tags"]["owner"] == "payments"
    bucket.refresh_from_db()
    assert bucket.status == ResourceStatus.ACTIVE and bucket.last_deep_checked_at is None


def test_a_fix_that_fails_on_one_resource_leaves_it_unfixed_and_fixes_the_others(
    requester, cloud, sandbox_faults
):
    bucket = made(requester, spec={"versioning": True})
    queue = made(requester, "sqs_queue")
    cloud.client("alpha", "s3").put_bucket_versioning(
        Bucket=bucket.physical_name, VersioningConfiguration={"Status": "Suspended"})
    cloud.client("alpha", "sqs").tag_queue(QueueUrl=queue.physical_id, Tags={"owner": "x"})
    sandbox_faults.set_faults(deny_actions=["PutBucketVersioning"])

    run = reconcile(environment="alpha", fix=True)

    unfixed = finding_for(run, bucket.arn)
    assert unfixed.kind == FindingKind.DRIFTED and not unfixed.resolved
    assert "PutBucketVersioning" in unfixed.details["not_fixed"]
    assert finding_for(run, queue.arn).action_taken == "re-applied the spec and tags"
    bucket.refresh_from_db()
    assert bucket.status == ResourceStatus.DRIFTED


CALLS_PER_SECOND = 5


@pytest.fixture
def delta(long_lease, container, krp_settings):
    """An environment of its own account (no other test's resources in its listings) with
    a budget of CALLS_PER_SECOND and eight describes at once."""
    alpha = krp_settings.environment("alpha")
    environment = alpha.model_copy(update={
        "name": "delta", "account_id": "444444444444", "queue": "krp.delta",
        "role_arn": "arn:aws:iam::444444444444:role/krp-provisioner",
        "api_calls_per_second": CALLS_PER_SECOND})
    settings = krp_settings.model_copy(update={
        "environments": (*krp_settings.environments, environment), "lease_seconds": 600,
        "reconcile_concurrency": 8})
    container.settings.override(providers.Object(settings))
    container.reset_singletons()
    return settings


def test_parallel_describes_never_exceed_the_environments_call_budget(
    delta, container, requester
):
    unbudgeted = CloudClients(delta)
    contexts = {unique_name("budget"): None for _ in range(6)}
    for name in contexts:
        contexts[name] = make_context(delta, unbudgeted, kind=SQS, name=name,
                                      environment="delta")
    queues = [(name, SQS.create(ctx, SQS.parse_spec({}))) for name, ctx in contexts.items()]
    inventory = inventory_of(queues, requester)
    Resource.objects.filter(pk__in=[r.pk for r in inventory]).update(environment="delta")
    clients = container.cloud()
    sent: list[float] = []
    for service in ("sts", "resourcegroupstaggingapi", "iam", "sqs"):
        # After the budget's own hook: the moment a call went out with its token.
        clients.client("delta", service).meta.events.register(
            "before-send", lambda **_: sent.append(time.monotonic()))

    try:
        run = reconcile(environment="delta", deep=True)
    finally:
        for ctx in contexts.values():
            SQS.delete(ctx)

    assert run.status == ReconcileRun.Status.CLEAN, run.error
    assert run.deep_checked == 6
    assert len(sent) == sum(run.aws_calls.values()) > 3 * CALLS_PER_SECOND
    # No 0.9 s holds more than the budget's calls (the 0.1 s spares the recording's lag).
    sent.sort()
    busiest = max(sum(1 for t in sent[i:] if t - start < 0.9) for i, start in enumerate(sent))
    assert busiest <= CALLS_PER_SECOND
