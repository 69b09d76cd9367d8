"""The identity guard: a worker confirms an environment's account before changing anything."""

import json

import pytest

from containers.settings import KrpSettings
from provisioning.cloud import CloudClients, IdentityGuard
from provisioning.errors import WrongAccount

pytestmark = pytest.mark.usefixtures("sandbox")


def test_each_environment_resolves_to_its_own_account(krp_settings):
    guard = IdentityGuard(krp_settings, CloudClients(krp_settings))

    assert guard.confirm("alpha")["account"] == "111111111111"
    assert guard.confirm("prod")["account"] == "222222222222"


def test_credentials_of_another_account_are_refused(sandbox):
    # No role: the sandbox's plain keys resolve to its default account, 123456789012.
    settings = KrpSettings.from_environ(
        {
            "KRP_ENVIRONMENTS": json.dumps(
                {
                    "alpha": {
                        "account_id": "111111111111",
                        "region": "ap-northeast-2",
                        "endpoint_url": sandbox.url,
                    }
                }
            )
        }
    )
    guard = IdentityGuard(settings, CloudClients(settings))

    with pytest.raises(WrongAccount) as refused:
        guard.confirm("alpha")

    assert "configured for account 111111111111" in str(refused.value)
    assert "resolve to account 123456789012" in str(refused.value)


def test_identity_is_checked_once_per_process_and_environment(sandbox, krp_settings):
    guard = IdentityGuard(krp_settings, CloudClients(krp_settings))
    guard.confirm("alpha")
    before = sandbox.calls("sts")

    guard.confirm("alpha")
    guard.confirm("alpha")

    assert sandbox.calls("sts") == before
