"""The expiry settings: KRP_EXPIRY_WARNINGS and an environment's max_ttl, requires_ttl and
expiry_warnings; a bad value stops start-up naming the variable or key."""

import json
from datetime import timedelta

import pytest

from containers.durations import format_duration, parse_duration
from containers.settings import KrpSettings, SettingsError

ZETA = {"account_id": "666666666666", "region": "ap-northeast-2"}


def settings_with(**zeta) -> KrpSettings:
    return KrpSettings.from_environ({"KRP_ENVIRONMENTS": json.dumps({"zeta": {**ZETA, **zeta}})})


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as refused:
        KrpSettings.from_environ(environ)
    return str(refused.value)


@pytest.mark.parametrize(("text", "delta", "written"), [
    ("30s", timedelta(seconds=30), "30s"), ("15m", timedelta(minutes=15), "15m"),
    ("7d", timedelta(days=7), "7d"), ("2w", timedelta(weeks=2), "14d"),
    ("1d12h", timedelta(hours=36), "1d12h"), ("90m", timedelta(minutes=90), "1h30m")])
def test_durations_are_read_and_written_back_in_their_shortest_form(text, delta, written):
    assert (parse_duration(text), format_duration(delta)) == (delta, written)


@pytest.mark.parametrize("text", ["7", "1.5h", "d", "0s", "12h1d", "1h1h", "-1d", "7 days"])
def test_a_duration_in_another_form_is_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_owners_are_warned_two_days_two_hours_and_thirty_minutes_before_by_default():
    assert KrpSettings.from_environ({}).expiry_warnings == (
        timedelta(days=2), timedelta(hours=2), timedelta(minutes=30))


def test_an_environments_expiry_warnings_replace_the_process_default():
    settings = KrpSettings.from_environ({"KRP_EXPIRY_WARNINGS": "1d,1h", "KRP_ENVIRONMENTS":
                                         json.dumps({"zeta": {**ZETA,
                                                              "expiry_warnings": ["3s"]}})})

    assert settings.expiry_warnings == (timedelta(days=1), timedelta(hours=1))
    assert settings.expiry_warnings_of("zeta") == (timedelta(seconds=3),)


def test_an_environment_bounds_and_may_require_a_ttl():
    zeta = settings_with(max_ttl="7d", requires_ttl=True).environment("zeta")

    assert (zeta.max_ttl, zeta.requires_ttl) == (timedelta(days=7), True)


def test_a_bad_expiry_warnings_variable_stops_start_up_naming_it():
    assert refusal({"KRP_EXPIRY_WARNINGS": "2d,soon"}).startswith("KRP_EXPIRY_WARNINGS: 'soon'")


@pytest.mark.parametrize(("key", "value"), [
    ("max_ttl", "a week"), ("max_ttl", 7), ("requires_ttl", "yes"),
    ("expiry_warnings", "2d"), ("expiry_warnings", ["2d", "later"])])
def test_a_bad_lifetime_key_stops_start_up_naming_it(key, value):
    message = refusal({"KRP_ENVIRONMENTS": json.dumps({"zeta": {**ZETA, key: value}})})

    assert f"zeta.{key}" in message
