"""Issue 17's expiry, end to end: in zeta (max_ttl 7d, owners warned 3 s before), a bucket
asked for with a 5-second ttl is warned about, extended once through the API, outlives its
first expiry, then is deleted by an ordinary delete request that krp-expiry filed.

A real worker consumes zeta's queue and the control queue, and runs beat itself (`-B`)
with a one-second sweep interval (not in the settings fingerprint): nothing in this test
calls the sweep.
"""

import time
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from provisioning.models import RequestAction, RequestStatus, Resource, ResourceRequest
from provisioning.services.expiry import SYSTEM_USER
from tests.fixtures.processes import celery_worker, start_process
from tests.fixtures.provisioning import unique_name

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

SWEEPING = {"KRP_SWEEP_INTERVAL_SECONDS": "1", "KRP_RECONCILE_INTERVAL_SECONDS": "0"}


@pytest.fixture
def zeta_worker(django_db_setup, broker, sandbox, tmp_path):
    args = celery_worker("zeta", "krp", name="zeta", concurrency=2)
    worker = start_process([*args, "-B", "-s", str(tmp_path / "beat-schedule")],
                           tmp_path / "zeta.log", env=SWEEPING)
    worker.wait_for("ready.")
    yield worker
    worker.stop()


def eventually(check, *, timeout: float, what: str, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout} s" + (f":\n{log()[-3000:]}" if log else ""))


def test_a_bucket_with_a_five_second_ttl_is_warned_extended_once_then_deleted_by_an_ordinary_delete_request(  # noqa: E501
        zeta_worker, requester, cloud):
    api = APIClient()
    api.force_authenticate(requester)
    name = unique_name("ttl")
    created = api.post("/api/v1/requests/", {"environment": "zeta", "resource_type": "s3_bucket",
                                             "name": name, "ttl": "5s"}, format="json")
    assert created.status_code == 202, created.json()

    resource = eventually(lambda: Resource.objects.filter(name=name, environment="zeta").first(),
                          timeout=60, what="resource", log=zeta_worker.log)
    first_expiry = resource.expires_at
    assert first_expiry is not None
    warned = eventually(lambda: Resource.objects.get(pk=resource.pk).expiry_warnings,
                        timeout=first_expiry.timestamp() - time.time(), what="warning",
                        log=zeta_worker.log)
    assert [w["before"] for w in warned] == ["3s"]

    extended = api.post(f"/api/v1/resources/{resource.pk}/extend/", {"ttl": "8s"},
                        format="json")
    assert extended.status_code == 200, extended.json()
    assert extended.json()["expiry_warnings"] == []

    # Past the first expiry (and a sweep or two): still there, no delete filed.
    time.sleep(max(0.0, first_expiry.timestamp() + 2 - time.time()))
    deletes = ResourceRequest.objects.filter(resource=resource, action=RequestAction.DELETE)
    assert not deletes.exists()
    assert Resource.objects.get(pk=resource.pk).status == "active"

    delete = eventually(lambda: deletes.filter(status=RequestStatus.SUCCEEDED).first(),
                        timeout=30, what="delete request succeeded", log=zeta_worker.log)
    assert delete.requested_by.username == SYSTEM_USER and deletes.count() == 1
    events = list(delete.events.values_list("from_status", "to_status", "actor", "message"))
    assert events[0][:3] == ("", "queued", SYSTEM_USER)
    assert events[0][3].startswith(f"expired: s3_bucket zeta/{name} reached its expiry")
    assert events[-1][1] == "succeeded"
    gone = Resource.objects.get(pk=resource.pk)
    assert gone.status == "deleted"
    # Warned again before the extended expiry: the extension reset the warnings.
    assert [w["before"] for w in gone.expiry_warnings] == ["3s"]
    assert gone.deleted_at - gone.expires_at < timedelta(seconds=15)
    buckets = [b["Name"] for b in cloud.client("zeta", "s3").list_buckets()["Buckets"]]
    assert delete.physical_name not in buckets
