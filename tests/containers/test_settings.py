"""KrpSettings from environment variables: defaults, validation messages, the fingerprint."""

import json

import pytest

from containers.settings import KrpSettings, SettingsError

ALPHA = {"account_id": "111111111111", "region": "eu-west-1"}


def settings_from(**variables: str) -> KrpSettings:
    return KrpSettings.from_environ(variables)


def environments(**entries: dict) -> str:
    return json.dumps(entries)


def test_embedded_default_is_two_sandbox_environments_with_prod_behind_approval():
    settings = settings_from()

    assert settings.environment_names == ("alpha", "prod")
    alpha, prod = settings.environment("alpha"), settings.environment("prod")
    assert (alpha.account_id, alpha.region, alpha.requires_approval) == (
        "111111111111", "ap-northeast-2", False,
    )
    assert (prod.account_id, prod.region, prod.requires_approval) == (
        "222222222222", "ap-northeast-2", True,
    )
    assert alpha.role_arn == "arn:aws:iam::111111111111:role/krp-provisioner"
    assert alpha.endpoint_url == prod.endpoint_url == "http://127.0.0.1:4566"
    # The sandbox's own keys in every process: no AWS_* variable needed or ever used.
    assert alpha.credentials == prod.credentials == "sandbox"
    assert settings.database["ENGINE"] == "django.db.backends.sqlite3"
    assert settings.task_mode == "eager"


def test_environments_from_json_take_defaults_for_queue_and_approval():
    settings = settings_from(KRP_ENVIRONMENTS=environments(dev=ALPHA))

    dev = settings.environment("dev")
    assert dev.queue == "dev"
    assert dev.requires_approval is False
    assert dev.role_arn is None and dev.endpoint_url is None
    assert dev.credentials == "chain"  # boto3's own chain: AWS_* variables, profiles, roles
    assert settings.queues == ("krp", "dev")


def test_an_environment_may_use_the_sandbox_keys_only_with_an_endpoint():
    sandbox = {**ALPHA, "endpoint_url": "http://sandbox:4566", "credentials": "sandbox"}

    assert settings_from(KRP_ENVIRONMENTS=environments(dev=sandbox)).environment(
        "dev").credentials == "sandbox"
    with pytest.raises(SettingsError) as refused:
        settings_from(KRP_ENVIRONMENTS=environments(dev={**ALPHA, "credentials": "sandbox"}))
    assert str(refused.value) == (
        "KRP_ENVIRONMENTS: dev: credentials 'sandbox' needs the sandbox's endpoint_url")


def test_the_embedded_default_moves_with_krp_sandbox_url_and_keeps_the_sandbox_keys():
    settings = settings_from(KRP_SANDBOX_URL="http://127.0.0.1:45666")

    assert {(e.endpoint_url, e.credentials) for e in settings.environments} == {
        ("http://127.0.0.1:45666", "sandbox")}


def test_postgres_url_becomes_django_database_settings():
    settings = settings_from(KRP_DATABASE_URL="postgres://krp@db.internal:5433/krp_main")

    assert settings.database["ENGINE"] == "django.db.backends.postgresql"
    assert (settings.database["HOST"], settings.database["PORT"]) == ("db.internal", 5433)
    assert settings.database["NAME"] == "krp_main"


def test_database_connections_are_kept_a_minute_and_checked_before_reuse_by_default():
    settings = settings_from(KRP_DATABASE_URL="postgres://krp@db.internal:5433/krp_main")

    assert (settings.database["CONN_MAX_AGE"], settings.database["CONN_HEALTH_CHECKS"]) == (
        60, True)


def test_krp_db_conn_max_age_zero_opens_a_connection_per_request():
    settings = settings_from(KRP_DATABASE_URL="postgres://krp@db.internal:5433/krp_main",
                             KRP_DB_CONN_MAX_AGE="0")

    assert (settings.database["CONN_MAX_AGE"], settings.database["CONN_HEALTH_CHECKS"]) == (
        0, False)


@pytest.mark.parametrize("raw", ["-1", "forever"])
def test_krp_db_conn_max_age_must_be_a_whole_number_of_seconds(raw):
    with pytest.raises(SettingsError, match="KRP_DB_CONN_MAX_AGE"):
        settings_from(KRP_DB_CONN_MAX_AGE=raw)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"KRP_ENVIRONMENTS": "{not json"}, "KRP_ENVIRONMENTS: not valid JSON"),
        ({"KRP_ENVIRONMENTS": "[]"}, "KRP_ENVIRONMENTS: must be a non-empty JSON object"),
        ({"KRP_ENVIRONMENTS": "{}"}, "KRP_ENVIRONMENTS: must be a non-empty JSON object"),
        (
            {"KRP_ENVIRONMENTS": environments(alpha={**ALPHA, "account_id": "1234"})},
            "KRP_ENVIRONMENTS: alpha.account_id: '1234' is not valid",
        ),
        (
            {"KRP_ENVIRONMENTS": environments(alpha={"account_id": "111111111111"})},
            "KRP_ENVIRONMENTS: alpha.region: Field required",
        ),
        (
            {"KRP_ENVIRONMENTS": environments(alpha={**ALPHA, "region": "Mars 1"})},
            "KRP_ENVIRONMENTS: alpha.region: 'Mars 1' is not valid",
        ),
        (
            {"KRP_ENVIRONMENTS": environments(alpha={**ALPHA, "colour": "red"})},
            "KRP_ENVIRONMENTS: alpha.colour: Extra inputs are not permitted",
        ),
        (
            {"KRP_ENVIRONMENTS": environments(alpha={**ALPHA, "requires_approval": "yes"})},
            "KRP_ENVIRONMENTS: alpha.requires_approval: must be true or false",
        ),
        (
            {"KRP_ENVIRONMENTS": environments(Alpha=ALPHA)},
            "KRP_ENVIRONMENTS: Alpha.name: 'Alpha' is not valid",
        ),
        (
            {"KRP_ENVIRONMENTS": environments(alpha="111111111111")},
            "KRP_ENVIRONMENTS: alpha: must be a JSON object",
        ),
        (
            {
                "KRP_ENVIRONMENTS": environments(
                    alpha={**ALPHA, "role_arn": "arn:aws:iam::222222222222:role/krp"}
                )
            },
            "role_arn arn:aws:iam::222222222222:role/krp is in account 222222222222, "
            "not in this environment's account 111111111111",
        ),
        (
            {"KRP_ENVIRONMENTS": environments(alpha=ALPHA, beta={**ALPHA, "queue": "alpha"})},
            "environments 'alpha' and 'beta' share queue 'alpha'",
        ),
        (
            {"KRP_ENVIRONMENTS": environments(alpha={**ALPHA, "queue": "krp"})},
            "uses queue 'krp', which is KRP_CONTROL_QUEUE's",
        ),
        ({"KRP_DATABASE_URL": "mysql://db/krp"}, "KRP_DATABASE_URL: must start with postgres://"),
        ({"KRP_BROKER_URL": "127.0.0.1:6379"}, "KRP_BROKER_URL: scheme '(none)' is not supported"),
        ({"KRP_TASK_MODE": "sometimes"}, "KRP_TASK_MODE: Input should be 'broker' or 'eager'"),
        ({"KRP_DEBUG": "maybe"}, "KRP_DEBUG: 'maybe' is not a boolean"),
        ({"KRP_SECRET_KEY": "short"}, "KRP_SECRET_KEY: String should have at least 16"),
    ],
)
def test_bad_variable_is_refused_with_a_message_naming_it(variables, expected):
    with pytest.raises(SettingsError) as refused:
        settings_from(**variables)

    assert expected in str(refused.value)


def test_every_bad_environment_is_reported_at_once():
    with pytest.raises(SettingsError) as refused:
        settings_from(
            KRP_ENVIRONMENTS=environments(
                alpha={**ALPHA, "account_id": "x"}, beta={**ALPHA, "region": "nowhere"}
            )
        )

    assert "alpha.account_id" in str(refused.value)
    assert "beta.region" in str(refused.value)


def test_settings_are_immutable():
    settings = settings_from()

    with pytest.raises(ValueError):
        settings.task_mode = "broker"  # type: ignore[misc]


def fingerprint(**variables: str) -> str:
    base = {
        "KRP_DATABASE_URL": "postgres://krp@db:5432/krp",
        "KRP_ENVIRONMENTS": environments(
            alpha={**ALPHA, "role_arn": "arn:aws:iam::111111111111:role/krp"}
        ),
    }
    return settings_from(**{**base, **variables}).fingerprint


@pytest.mark.parametrize(
    "change",
    [
        {"KRP_ENVIRONMENTS": environments(alpha={**ALPHA, "account_id": "333333333333"})},
        {"KRP_ENVIRONMENTS": environments(alpha={**ALPHA, "region": "us-east-1"})},
        {"KRP_ENVIRONMENTS": environments(alpha={**ALPHA, "endpoint_url": "http://127.0.0.1:1"})},
        {"KRP_ENVIRONMENTS": environments(alpha={**ALPHA, "queue": "alpha-2"})},
        {"KRP_ENVIRONMENTS": environments(beta=ALPHA)},
        {"KRP_ENVIRONMENTS": environments(alpha=ALPHA)},
        {"KRP_DATABASE_URL": "postgres://krp@db:5432/krp_other"},
        {"KRP_CONTROL_QUEUE": "krp-control"},
    ],
)
def test_fingerprint_changes_with_anything_that_decides_where_a_change_lands(change):
    assert fingerprint(**change) != fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"KRP_DATABASE_URL": "postgres://krp:pw@other-host:6432/krp"},
        {"KRP_BROKER_URL": "redis://broker.internal:6379/3"},
        {"KRP_SECRET_KEY": "another-secret-key-entirely"},
        {"KRP_DEBUG": "true"},
        {"KRP_TASK_MODE": "broker"},
    ],
)
def test_fingerprint_ignores_hosts_secrets_and_modes(change):
    assert fingerprint(**change) == fingerprint()


def test_fingerprint_does_not_depend_on_the_order_of_environments():
    beta = {**ALPHA, "region": "us-east-1"}

    assert (
        settings_from(KRP_ENVIRONMENTS=environments(alpha=ALPHA, beta=beta)).fingerprint
        == settings_from(KRP_ENVIRONMENTS=environments(beta=beta, alpha=ALPHA)).fingerprint
    )


def test_describe_shows_no_secret():
    settings = settings_from(
        KRP_BROKER_URL="redis://:broker-password@broker:6379/0",
        KRP_SECRET_KEY="django-secret-key-value",
    )

    shown = json.dumps(settings.describe())
    assert "broker-password" not in shown
    assert "django-secret-key-value" not in shown
    assert "django-secret-key-value" not in repr(settings)
    assert settings.fingerprint in shown


def test_a_shared_cache_for_throttle_counts_is_redis_when_configured():
    assert settings_from().cache["BACKEND"].endswith("LocMemCache")
    shared = settings_from(KRP_CACHE_URL="redis://:cache-pw@cache:6379/2")
    assert shared.cache == {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                            "LOCATION": "redis://:cache-pw@cache:6379/2"}
    assert "cache-pw" not in repr(shared)
    with pytest.raises(SettingsError, match="KRP_CACHE_URL: must be a redis://"):
        settings_from(KRP_CACHE_URL="memcached://x")


def test_a_bad_metrics_token_is_refused_without_being_quoted():
    with pytest.raises(SettingsError) as refused:
        settings_from(KRP_METRICS_TOKEN="short secret")

    assert str(refused.value) == "KRP_METRICS_TOKEN: too short (12 characters; at least 16)"
    token = "a-good-metrics-token-of-32-chars"
    assert token not in repr(settings_from(KRP_METRICS_TOKEN=f"{token}\n"))


def test_the_metrics_directory_must_be_absolute():
    assert settings_from().metrics_path.parts[-2:] == ("var", "metrics")
    with pytest.raises(SettingsError, match="KRP_METRICS_DIR .* must be an absolute path"):
        settings_from(KRP_METRICS_DIR="var/metrics")
