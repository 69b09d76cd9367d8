"""The notification settings: email from KRP_EMAIL_URL (console by default), and a
retry backoff that must fit the visibility timeout."""

import pytest

from containers.settings import KrpSettings, SettingsError


def settings_from(**variables: str) -> KrpSettings:
    return KrpSettings.from_environ(variables)


def test_email_goes_to_the_console_by_default():
    assert settings_from().email == {
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}


def test_an_smtp_url_becomes_djangos_email_settings_and_its_password_stays_out_of_repr():
    settings = settings_from(KRP_EMAIL_URL="smtp+tls://krp%40example.org:mail-pw@mail:2525")

    assert settings.email == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "mail", "EMAIL_PORT": 2525, "EMAIL_HOST_USER": "krp@example.org",
        "EMAIL_HOST_PASSWORD": "mail-pw", "EMAIL_USE_TLS": True, "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 10,
    }
    assert "mail-pw" not in repr(settings)
    assert settings_from(KRP_EMAIL_URL="smtps://mail").email["EMAIL_PORT"] == 465


def test_webhooks_reach_only_public_addresses_unless_networks_are_allowed():
    assert settings_from().webhook_allowed_networks == ()
    allowed = settings_from(
        KRP_WEBHOOK_ALLOWED_NETWORKS=" 10.20.0.0/16, 127.0.0.1,fd00::/8 ,").webhook_allowed_networks

    assert [str(network) for network in allowed] == ["10.20.0.0/16", "127.0.0.1/32", "fd00::/8"]


@pytest.mark.parametrize(("variables", "expected"), [
    ({"KRP_EMAIL_URL": "sendmail://local"}, "KRP_EMAIL_URL: scheme 'sendmail' is not"),
    ({"KRP_EMAIL_URL": "smtp://mail:port"}, "KRP_EMAIL_URL: not a valid URL"),
    ({"KRP_NOTIFY_BACKOFF_MAX_SECONDS": "1800", "KRP_VISIBILITY_TIMEOUT_SECONDS": "3000"},
     "at least twice the longest countdown or job (1800 s)"),
    ({"KRP_WEBHOOK_MAX_FAILURES": "0"}, "KRP_WEBHOOK_MAX_FAILURES"),
    ({"KRP_PUBLIC_URL": "krp.example.org"}, "KRP_PUBLIC_URL"),
    ({"KRP_WEBHOOK_ALLOWED_NETWORKS": "10.20.0.0/16,10.30.0.5/16"},
     "KRP_WEBHOOK_ALLOWED_NETWORKS: '10.30.0.5/16' is not a network in CIDR form"),
    ({"KRP_WEBHOOK_ALLOWED_NETWORKS": "intranet"}, "KRP_WEBHOOK_ALLOWED_NETWORKS: 'intranet'"),
])
def test_a_bad_notification_setting_is_refused_naming_it(variables, expected):
    with pytest.raises(SettingsError) as refused:
        settings_from(**variables)

    assert expected in str(refused.value)
