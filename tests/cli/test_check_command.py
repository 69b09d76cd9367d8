"""`krp check`: the settings fingerprint, the database, the broker, and whether each
environment's credentials resolve to its configured account."""

import json
import os

import pytest
from django.conf import settings

from tests.cli import assert_refused, krp, run_krp
from tests.settings import SANDBOX_URL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox")]


def test_check_passes_when_every_environment_resolves_to_its_account():
    ran = krp("check")

    lines = ran.stdout.splitlines()
    assert lines[0] == f"settings fingerprint: {settings.KRP.fingerprint} (task mode broker)"
    assert "database: ok" in lines
    assert "broker: ok" in lines
    assert ("environment alpha (account 111111111111, ap-northeast-2, queue alpha): ok"
            in lines)
    assert "environment prod (account 222222222222, ap-northeast-2, queue prod): ok" in lines
    assert "checking alpha ..." in ran.stderr


def test_check_json_has_the_fingerprint_and_each_environments_identity():
    report = json.loads(krp("check", "--json").stdout)

    assert set(report) == {"fingerprint", "task_mode", "database", "broker", "sweep",
                           "call_budget", "environments"}
    assert (report["fingerprint"], report["database"], report["broker"]) == (
        settings.KRP.fingerprint, "ok", "ok")
    alpha = report["environments"]["alpha"]
    assert set(alpha) == {"account_id", "region", "queue", "status", "arn", "calls_per_second"}
    assert alpha["status"] == "ok"
    assert alpha["arn"].startswith("arn:aws:sts::111111111111:assumed-role/krp-provisioner/")


def test_check_as_a_process_with_the_same_settings_prints_the_same_fingerprint():
    done = run_krp("check")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].split()[2] == settings.KRP.fingerprint


def test_check_as_a_process_fails_naming_the_account_an_environment_really_is():
    # No role: the sandbox's plain keys resolve to moto's default account, not 333333333333.
    environments = {"alpha": {"account_id": "333333333333", "region": "ap-northeast-2",
                              "endpoint_url": SANDBOX_URL}}

    done = run_krp("check", env={"KRP_ENVIRONMENTS": json.dumps(environments)})

    assert_refused(done, "check failed")
    assert "database: ok" in done.stdout
    assert ("environment alpha (account 333333333333, ap-northeast-2, queue alpha): "
            "wrong_account: environment 'alpha' is configured for account 333333333333, but "
            "this worker's credentials resolve to account 123456789012") in done.stdout
    fingerprint = done.stdout.splitlines()[0].split()[2]
    assert fingerprint != settings.KRP.fingerprint  # other settings, another fingerprint


def test_check_json_as_a_process_is_clean_json_even_when_it_fails():
    environments = {"alpha": {"account_id": "333333333333", "region": "ap-northeast-2",
                              "endpoint_url": SANDBOX_URL}}

    done = run_krp("check", "--json", env={"KRP_ENVIRONMENTS": json.dumps(environments)})

    assert_refused(done, "check failed")
    report = json.loads(done.stdout)
    assert report["environments"]["alpha"]["status"].startswith("wrong_account: ")


def test_check_shows_each_environments_call_budget_and_where_it_is_kept():
    environments = json.loads(os.environ["KRP_ENVIRONMENTS"])
    environments["prod"]["api_calls_per_second"] = 7

    done = run_krp("check", env={"KRP_ENVIRONMENTS": json.dumps(environments)})

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "AWS call budget: ok" in lines
    broker = settings.KRP.broker_url
    assert f"  AWS call budget 1000 calls/s, shared through {broker}" in lines
    assert f"  AWS call budget 7 calls/s, shared through {broker}" in lines
    assert lines.index(f"  AWS call budget 7 calls/s, shared through {broker}") == lines.index(
        "environment prod (account 222222222222, ap-northeast-2, queue prod): ok") + 1


def test_check_warns_when_the_call_budget_cannot_be_shared_between_processes():
    # Eager mode without KRP_CACHE_URL: no Redis to share it through.
    done = run_krp("check", env={"KRP_TASK_MODE": "eager"})

    assert done.returncode == 0, done.stdout + done.stderr
    assert "AWS call budget: per process" in done.stdout
    assert ("warning: the AWS call budget is per process: N workers may send N times each "
            "environment's api_calls_per_second (set KRP_CACHE_URL to a Redis)") in done.stdout
