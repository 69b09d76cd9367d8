"""Webhooks are no way into the platform's private network: registration refuses a URL
whose host is, or resolves to, an address that is not public (unless
KRP_WEBHOOK_ALLOWED_NETWORKS allows it), and every delivery checks again, refusing without
sending (failed, not retried, one failure of its channel) and connecting to the very
address it checked. The suite allows 127.0.0.0/8 (tests/settings.py) for its receivers;
these tests override that. No connection goes beyond loopback: registration only
inspects an address or resolves a name (localhost, or a .invalid one no resolver knows)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import pytest
import requests
from dependency_injector import providers

from provisioning.errors import InvalidRequest
from provisioning.services.channels import check_channel
from provisioning.services.deliveries import attempt_delivery
from provisioning.services.notifications import record_deliveries
from provisioning.webhook_guard import PinnedAdapter, refusal
from tests.fixtures.receivers import register_channel

pytestmark = pytest.mark.django_db


def allowing(container, krp_settings, *networks: str) -> None:
    """Every process-wide setting as the suite's, but webhooks allowed only `networks`."""
    container.settings.override(providers.Object(krp_settings.model_copy(update={
        "webhook_allowed_networks": tuple(ipaddress.ip_network(n) for n in networks)})))


@pytest.fixture
def public_only(container, krp_settings) -> None:
    """The default: webhooks reach only public addresses."""
    allowing(container, krp_settings)


def url_problem(url: str) -> str | None:
    try:
        check_channel(kind="webhook", target=url, events=["succeeded"])
    except InvalidRequest as invalid:
        [problem] = invalid.fields["url"]
        return problem
    return None


@pytest.mark.usefixtures("public_only")
@pytest.mark.parametrize(("url", "reason"), [
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/",
     "169.254.169.254 is a link-local address (where cloud metadata services answer)"),
    ("http://10.0.0.5/admin", "10.0.0.5 is a private address"),
    ("http://[::1]:8080/hook", "::1 is a loopback address"),
    ("http://localhost:8080/hook", "localhost resolves to a loopback address"),
    ("http://[::ffff:169.254.169.254]/", "is a link-local address"),
    ("http://100.64.0.1/", "is a carrier-grade NAT (shared) address"),
    ("http://0.0.0.0:8080/", "is an unspecified address"),
    ("http://[fd12::1]/", "is a private address"),
    ("http://[fe80::1]/", "is a link-local address"),
    ("http://224.0.0.1/", "is a multicast address"),
])
def test_registering_a_webhook_to_a_private_address_is_refused_naming_the_setting(url, reason):
    problem = url_problem(url)

    assert problem is not None and reason in problem
    assert "KRP_WEBHOOK_ALLOWED_NETWORKS" in problem


@pytest.fixture
def no_such_name(monkeypatch):
    """A name no resolver knows, answered here rather than by asking a DNS server: the
    suite sends nothing off the machine."""
    resolve = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "receiver-not-up-yet.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.usefixtures("public_only", "no_such_name")
@pytest.mark.parametrize("url", ["https://93.184.215.14/hook", "https://[2606:4700::1111]/",
                                 "https://receiver-not-up-yet.invalid/hook"])
def test_a_public_address_or_a_name_that_does_not_resolve_yet_is_accepted(url):
    assert url_problem(url) is None


def test_an_allowed_network_lets_its_addresses_through(container, krp_settings):
    allowing(container, krp_settings, "10.20.0.0/16", "127.0.0.1/32")

    assert url_problem("http://10.20.3.4/hook") is None
    assert url_problem("http://localhost/hook") is None
    assert "private" in url_problem("http://10.21.0.1/hook")
    assert "loopback" in url_problem("http://127.0.0.2/hook")


def test_an_ipv4_mapped_address_is_judged_as_its_ipv4():
    allowed = (ipaddress.ip_network("10.0.0.0/8"),)

    assert refusal(ipaddress.ip_address("::ffff:10.1.2.3"), allowed) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) == "a loopback address"
    assert refusal(ipaddress.ip_address("93.184.215.14"), ()) is None


def deliver(channel) -> str:
    [delivery] = record_deliveries(team_id=channel.team_id, events=["succeeded"],
                                   payload_of=lambda event, team: {"team": team})
    return str(delivery.pk)


def test_a_delivery_to_an_address_no_longer_allowed_fails_unsent_and_counts(
        team, webhook_receiver, container, krp_settings):
    receiver = webhook_receiver([200])
    # Registered while loopback was allowed; the operator has taken that back since (as a
    # name re-pointed at a private address after registration would be refused).
    channel, _ = register_channel(team, receiver.url, ["succeeded"])
    allowing(container, krp_settings)

    attempt = attempt_delivery(delivery_id=deliver(channel))

    assert (attempt.status, attempt.attempts, attempt.retry_in) == ("failed", 1, None)
    channel.refresh_from_db()
    delivery = channel.deliveries.get()
    assert "is a loopback address" in delivery.last_error
    assert "KRP_WEBHOOK_ALLOWED_NETWORKS" in delivery.last_error
    assert receiver.url not in delivery.last_error and "127.0.0.1" not in delivery.last_error
    assert channel.consecutive_failures == 1
    assert receiver.received == []


def test_a_delivery_by_name_goes_to_the_checked_address_with_the_name_as_host(
        team, webhook_receiver, container, krp_settings):
    receiver = webhook_receiver([200])
    port = urlsplit(receiver.url).port
    allowing(container, krp_settings, "127.0.0.0/8", "::1/128")
    channel, _ = register_channel(team, f"http://localhost:{port}/hooks/krp", ["succeeded"])

    attempt = attempt_delivery(delivery_id=deliver(channel))

    assert attempt.status == "delivered"
    [post] = receiver.received
    assert post.headers["Host"] == f"localhost:{port}"


def test_the_pinned_adapter_never_resolves_the_name_again(webhook_receiver):
    receiver = webhook_receiver([204])
    port = urlsplit(receiver.url).port
    session = requests.Session()
    # A name no resolver knows: the POST can reach the receiver only through the pin.
    session.mount("http://", PinnedAdapter(ipaddress.ip_address("127.0.0.1"),
                                           "receiver.invalid"))

    with session:
        answer = session.post(f"http://receiver.invalid:{port}/hooks/krp", data=b"{}",
                              timeout=2, allow_redirects=False)

    assert answer.status_code == 204
    assert receiver.received[0].headers["Host"] == f"receiver.invalid:{port}"


def self_signed(directory, name: str) -> tuple[str, str]:
    """A certificate for `name` (its own CA) and its key, as PEM files: (cert, key)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_https_to_the_pinned_address_sends_the_name_and_checks_the_certificate_for_it(
        tmp_path, webhook_receiver):
    import ssl

    receiver = webhook_receiver([204])
    cert, key = self_signed(tmp_path, "receiver.invalid")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    port = urlsplit(receiver.url).port

    def post(name: str) -> int:
        with requests.Session() as session:
            session.mount("https://", PinnedAdapter(ipaddress.ip_address("127.0.0.1"), name))
            return session.post(f"https://{name}:{port}/hooks/krp", data=b"{}", verify=cert,
                                timeout=2, allow_redirects=False).status_code

    assert post("receiver.invalid") == 204
    with pytest.raises(requests.exceptions.SSLError):
        post("other.invalid")  # the certificate is checked for the URL's name, not the address
    assert [p.headers["Host"] for p in receiver.received] == [f"receiver.invalid:{port}"]
