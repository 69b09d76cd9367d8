"""AWS calls are counted by environment and service as they go out, and throttling as
botocore classifies it, whatever the call's outcome."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from provisioning.cloud import CloudClients
from tests.metrics.conftest import local

S3 = {"environment": "alpha", "service": "s3"}


def test_throttled_calls_are_counted_by_service_with_every_attempt(krp_settings,
                                                                   sandbox_faults):
    clients = CloudClients(krp_settings, max_attempts=2)
    s3 = clients.client("alpha", "s3")
    s3.list_buckets()  # the role is assumed before the faults begin (sts is not throttled)
    calls, throttles = local("krp_aws_calls_total", **S3), local("krp_aws_throttles_total", **S3)
    sandbox_faults.set_faults(throttle_rate=1.0, services=["s3"])

    with pytest.raises(ClientError) as throttled:
        s3.list_buckets()

    assert throttled.value.response["Error"]["Code"] == "SlowDown"
    assert local("krp_aws_calls_total", **S3) - calls == 2  # botocore retried once
    assert local("krp_aws_throttles_total", **S3) - throttles == 2


def test_an_error_that_is_not_throttling_is_a_call_but_no_throttle(krp_settings, sandbox):
    s3 = CloudClients(krp_settings, max_attempts=2).client("alpha", "s3")
    s3.list_buckets()
    calls, throttles = local("krp_aws_calls_total", **S3), local("krp_aws_throttles_total", **S3)

    with pytest.raises(ClientError):
        s3.get_bucket_tagging(Bucket="krp-metrics-no-such-bucket")

    assert local("krp_aws_calls_total", **S3) - calls == 1
    assert local("krp_aws_throttles_total", **S3) == throttles
