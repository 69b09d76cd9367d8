"""Each environment's AWS call budget (api_calls_per_second in KRP_ENVIRONMENTS) and the
wait for a token (KRP_CALL_BUDGET_WAIT_SECONDS): defaults, validation, the fingerprint, and
where the container keeps the budget."""

import json

import pytest

from containers.core import CoreContainer
from containers.settings import KrpSettings, SettingsError

ALPHA = {"account_id": "111111111111", "region": "eu-west-1"}
WHOLE = "KRP_ENVIRONMENTS: alpha.api_calls_per_second: must be a whole number of calls per second"


def settings_from(**variables: str) -> KrpSettings:
    return KrpSettings.from_environ(variables)


def with_alpha(**fields) -> str:
    return json.dumps({"alpha": {**ALPHA, **fields}})


def test_each_environment_has_a_call_budget_of_20_calls_a_second_unless_configured():
    settings = settings_from(KRP_ENVIRONMENTS=json.dumps(
        {"alpha": ALPHA, "prod": {**ALPHA, "api_calls_per_second": 5}}))

    assert settings.environment("alpha").api_calls_per_second == 20
    assert settings.environment("prod").api_calls_per_second == 5
    assert settings.call_budget_wait_seconds == 30
    assert settings.describe()["environments"]["prod"]["api_calls_per_second"] == 5


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"KRP_ENVIRONMENTS": with_alpha(api_calls_per_second=0)},
         "alpha.api_calls_per_second: Input should be greater than or equal to 1"),
        ({"KRP_ENVIRONMENTS": with_alpha(api_calls_per_second="5")},
         WHOLE),
        ({"KRP_ENVIRONMENTS": with_alpha(api_calls_per_second=2.5)},
         WHOLE),
        ({"KRP_ENVIRONMENTS": with_alpha(api_calls_per_second=True)},
         WHOLE),
        ({"KRP_CALL_BUDGET_WAIT_SECONDS": "0"}, "KRP_CALL_BUDGET_WAIT_SECONDS"),
        ({"KRP_CALL_BUDGET_WAIT_SECONDS": "soon"},
         "KRP_CALL_BUDGET_WAIT_SECONDS: 'soon' is not a whole number"),
    ],
)
def test_a_bad_call_budget_is_refused_naming_the_variable(variables, expected):
    with pytest.raises(SettingsError) as refused:
        settings_from(**variables)

    assert expected in str(refused.value)


def test_the_call_budget_is_not_part_of_the_fingerprint():
    # It decides how fast, not where: web and worker may differ on it without refusing jobs.
    assert (settings_from(KRP_ENVIRONMENTS=with_alpha(api_calls_per_second=5)).fingerprint
            == settings_from(KRP_ENVIRONMENTS=with_alpha()).fingerprint)


@pytest.mark.parametrize(
    ("variables", "kept"),
    [
        ({"KRP_TASK_MODE": "broker", "KRP_BROKER_URL": "redis://127.0.0.1:6379/12"},
         "shared through redis://127.0.0.1:6379/12"),
        ({"KRP_TASK_MODE": "broker", "KRP_BROKER_URL": "amqp://guest:guest@127.0.0.1//",
          "KRP_CACHE_URL": "redis://127.0.0.1:6379/12"}, "shared through redis://127.0.0.1:6379/12"),
        ({"KRP_TASK_MODE": "eager", "KRP_BROKER_URL": "redis://127.0.0.1:6379/12"},
         "per process"),
        ({"KRP_TASK_MODE": "broker", "KRP_BROKER_URL": "amqp://guest:guest@127.0.0.1//"},
         "per process"),
    ],
)
def test_the_budget_is_kept_in_the_brokers_redis_else_the_caches_else_per_process(
    variables, kept
):
    # Not wired: this container only builds, it must not take the modules' injection over.
    container = CoreContainer(settings=settings_from(**variables), origin="test")

    described = container.call_budget().describe()

    assert described["alpha"]["kept"].startswith(kept)
    assert described["alpha"]["calls_per_second"] == 20
    # The AWS clients take from the container's one budget.
    assert container.cloud()._budget is container.call_budget()
