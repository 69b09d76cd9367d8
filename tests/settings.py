"""Django settings for the test suite: krp_project.settings over a test environment.

The variables are set here, before KrpSettings reads them, and stay in os.environ, so a
worker process started by a test (with krp_project.settings) builds exactly the same
settings and fingerprint. Real AWS credentials are replaced, never used.
"""

import atexit
import json
import os
import shutil
import tempfile

from tests.fixtures.ports import free_loopback_port

os.environ.setdefault("KRP_TEST_SANDBOX_PORT", str(free_loopback_port()))

# A metrics directory of this test process's own (and of the workers and web processes it
# starts, which inherit it), whatever the shell says: the suite's second pass (the broker
# tier on RabbitMQ) runs alongside in another process, and neither may count the other's.
# Tests about what several processes add up give those processes a directory of the test's.
METRICS_DIR = tempfile.mkdtemp(prefix="krp-test-metrics-")
atexit.register(shutil.rmtree, METRICS_DIR, ignore_errors=True)
SANDBOX_URL = f"http://127.0.0.1:{os.environ['KRP_TEST_SANDBOX_PORT']}"

for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(variable, None)

os.environ.update(
    {
        "KRP_DATABASE_URL": os.environ.get(
            "KRP_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/krp_test"
        ),
        "KRP_BROKER_URL": os.environ.get("KRP_TEST_BROKER_URL", "redis://127.0.0.1:6379/15"),
        "KRP_TASK_MODE": "broker",
        "KRP_SECRET_KEY": "krp-test-suite-secret-key-not-for-use",
        "KRP_LOG_LEVEL": "INFO",
        # Short leases and backoffs, so that crash recovery and retries happen in seconds.
        "KRP_LEASE_SECONDS": "6",
        "KRP_RETRY_BACKOFF_SECONDS": "1",
        "KRP_RETRY_BACKOFF_MAX_SECONDS": "2",
        "KRP_MAX_ATTEMPTS": "4",
        # No beat runs in the suite: readiness would call the sweep overdue 3 intervals
        # after the test database was made. The tests of that give their own interval.
        "KRP_SWEEP_INTERVAL_SECONDS": "3600",
        "KRP_AWS_MAX_ATTEMPTS": "2",
        # Notifications: emails kept in memory (django.core.mail.outbox); a delivery tried
        # three times a second or two apart; a channel disabled after two that gave up.
        "KRP_EMAIL_URL": "locmem://",
        "KRP_NOTIFY_MAX_ATTEMPTS": "3",
        "KRP_NOTIFY_BACKOFF_SECONDS": "1",
        "KRP_NOTIFY_BACKOFF_MAX_SECONDS": "2",
        "KRP_WEBHOOK_MAX_FAILURES": "2",
        "KRP_WEBHOOK_TIMEOUT_SECONDS": "2",
        # The suite's webhook receivers listen on loopback, which webhooks may not reach by
        # default (webhook_guard); set here, in the environment, so that the workers the
        # tests start allow it too. The guard's own tests override it.
        "KRP_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "KRP_METRICS_DIR": METRICS_DIR,
        "KRP_METRICS_TOKEN": "krp-test-metrics-token-never-logged",
        "KRP_ENVIRONMENTS": json.dumps(
            {
                "alpha": {
                    "account_id": "111111111111",
                    "region": "ap-northeast-2",
                    "role_arn": "arn:aws:iam::111111111111:role/krp-provisioner",
                    "endpoint_url": SANDBOX_URL,
                    # Every call still takes a token (in Redis, shared by the test process
                    # and its workers), at a rate that paces nothing: the budget's own tests
                    # set the rates they are about.
                    "api_calls_per_second": 1000,
                },
                "prod": {
                    "account_id": "222222222222",
                    "region": "ap-northeast-2",
                    "role_arn": "arn:aws:iam::222222222222:role/krp-provisioner",
                    "endpoint_url": SANDBOX_URL,
                    "api_calls_per_second": 1000,
                    "requires_approval": True,
                },
                # Auto-approves what stays within a team's quota (tests/*/test_quotas*).
                "theta": {
                    "account_id": "777777777777",
                    "region": "ap-northeast-2",
                    "role_arn": "arn:aws:iam::777777777777:role/krp-provisioner",
                    "endpoint_url": SANDBOX_URL,
                    "api_calls_per_second": 1000,
                    "requires_approval": True,
                    "auto_approve_within_quota": True,
                },
                # Resources here must say how long they live (at most 7 days), and their
                # owners are warned 3 s before: the expiry tests' environment.
                "zeta": {
                    "account_id": "666666666666",
                    "region": "ap-northeast-2",
                    "role_arn": "arn:aws:iam::666666666666:role/krp-provisioner",
                    "endpoint_url": SANDBOX_URL,
                    "api_calls_per_second": 1000,
                    "max_ttl": "7d",
                    "requires_ttl": True,
                    "expiry_warnings": ["3s"],
                },
            }
        ),
        "AWS_ACCESS_KEY_ID": "AKIAKRPTESTSUITE0001",
        "AWS_SECRET_ACCESS_KEY": "krp-test-secret-access-key-must-never-be-logged",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)

from krp_project.settings import *  # noqa: E402,F403
from krp_project.settings import DATABASES  # noqa: E402

# The database KRP_DATABASE_URL names *is* the test database (created and dropped by
# pytest-django), so a worker process given the same URL works on the same rows.
DATABASES["default"]["TEST"] = {"NAME": DATABASES["default"]["NAME"]}

# Users are made in many tests; the slow default hasher buys nothing here.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Static files in this process: Django's plain storage, found by the finders, no
# `collectstatic`. The manifest storage of krp_project.settings needs a collected manifest to
# render any page with a {% static %} tag, so the suite would depend on what a
# `collectstatic` once left in var/static, stale or missing. The manifest storage and
# WhiteNoise's hashed, far-future files are proven where they serve: against real web
# processes that collect first (tests/fixtures/web.py).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
