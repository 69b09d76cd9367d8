"""A reconcile run is counted by environment and status, timed, and its findings counted
by kind: exactly as many of each as the run recorded."""

from __future__ import annotations

import pytest
from django.db.models import Count

from provisioning.models import FindingKind, Resource
from provisioning.services import execute_request
from provisioning.services.reconcile import reconcile
from tests.fixtures.provisioning import unique_name
from tests.fixtures.requests import submit
from tests.metrics.conftest import local

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

KINDS = [kind.value for kind in FindingKind]


def test_a_reconcile_run_counts_its_findings_by_kind(requester, cloud):
    request = submit(requester, unique_name("drift"), resource_type="sqs_queue",
                     tags={"owner": "payments"})
    assert execute_request(request_id=str(request.pk), task_id=request.task_id).status == (
        "succeeded")
    queue = Resource.objects.get(created_by_request=request)
    cloud.client("alpha", "sqs").tag_queue(QueueUrl=queue.physical_id,
                                          Tags={"owner": "someone-else"})
    before = {kind: local("krp_reconcile_findings_total", environment="alpha", kind=kind)
              for kind in KINDS}
    runs = local("krp_reconcile_runs_total", environment="alpha", status="findings")
    timed = local("krp_reconcile_duration_seconds_count", environment="alpha")

    run = reconcile(environment="alpha")

    recorded = dict(run.findings.order_by().values_list("kind").annotate(n=Count("pk")))
    assert recorded.get(FindingKind.DRIFTED, 0) >= 1
    assert {kind: local("krp_reconcile_findings_total", environment="alpha", kind=kind)
            - before[kind] for kind in KINDS} == {kind: recorded.get(kind, 0) for kind in KINDS}
    assert local("krp_reconcile_runs_total", environment="alpha", status="findings") - runs == 1
    assert local("krp_reconcile_duration_seconds_count", environment="alpha") - timed == 1
