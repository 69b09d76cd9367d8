"""Where a webhook may go: public addresses only, unless KRP_WEBHOOK_ALLOWED_NETWORKS says
otherwise, so that a team's channel is no way into the platform's private network (the
cloud's metadata service hands a worker its credentials; internal admin services trust
the network).

Checked twice: when a channel is registered (channels.check_channel: an IP literal, or a
host name's addresses if it resolves) and on every delivery (deliveries._post), which is
the check that matters: a name's addresses may change after registration (DNS
rebinding). A delivery resolves the host once, refuses if any address is refused, and
connects to the address it checked (`PinnedAdapter`), never resolving again; the Host
header and, for https, SNI and the certificate check keep the name.

No library fitted: `advocate` is unmaintained since 2020; `requests-hardened` (Saleor's,
kept up) filters private addresses and pins the one it checked, but knows only an
allow-loopback switch, not networks an operator allows; the rest are young and small.
The adapter is requests' own HTTPAdapter with its pool's address swapped
(`build_connection_pool_key_attributes`, requests >= 2.32) and urllib3's
`server_hostname` / `assert_hostname` pool options.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "KRP_WEBHOOK_ALLOWED_NETWORKS"
# Not global, but is_global does not say so for every Python (3.11: 100.64.0.0/10 is
# neither private nor global); named here so that the reason says what it is.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


class Refused(Exception):
    """The host may not be reached; the message says why, without the URL."""


def refusal(address: Address, allowed: Iterable[Network]) -> str | None:
    """Why a webhook may not reach `address` (None: it may): what kind of address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:169.254.169.254 reaches 169.254.169.254: judged as the IPv4 it is.
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    if any(address in network for network in allowed):
        return None
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local,
         "a link-local address (where cloud metadata services answer)"),
        (address.is_multicast, "a multicast address"),
        (address in SHARED_ADDRESS_SPACE, "a carrier-grade NAT (shared) address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "an address that is not globally routable"),
    )
    return next((kind for refused, kind in checks if refused), None)


def explain(subject: str, reason: str) -> str:
    """The message of a refusal: what, why, and the setting that would allow it."""
    return (f"{subject} {reason}; webhooks reach only public addresses unless "
            f"{SETTING} allows it")


def literal(host: str) -> Address | None:
    """The host as an IP address if it is one (brackets of an IPv6 URL already dropped)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to, in the resolver's order; OSError (socket.gaierror)
    if it does not resolve."""
    found: list[Address] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def checked_address(host: str, port: int, allowed: Iterable[Network]) -> Address:
    """The address a delivery connects to: `host` resolved once, every address checked
    (Refused if any is refused: which one a connection would use is the resolver's
    choice), the first one returned. OSError if the name does not resolve."""
    allowed = tuple(allowed)
    addresses = resolve(host, port)
    for address in addresses:
        reason = refusal(address, allowed)
        if reason:
            subject = "the host is" if literal(host) else "the host name resolves to"
            raise Refused(explain(f"refused: {subject}", reason))
    return addresses[0]


class PinnedAdapter(HTTPAdapter):
    """requests' adapter, connecting to one checked address whatever the URL's host
    resolves to; TLS still sends the URL's host name (SNI) and checks the certificate
    against it. Proxies from the environment are ignored: a proxy would resolve the name
    itself, past the check."""

    def __init__(self, address: Address, hostname: str, **kwargs: Any) -> None:
        self._address, self._hostname = address, hostname
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert)
        host_params["host"] = str(self._address)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self._hostname
            pool_kwargs["assert_hostname"] = self._hostname
        return host_params, pool_kwargs

    def send(self, request, stream=False, timeout=None, verify=True, cert=None,
             proxies=None):
        # urllib3 would name the address it connects to; the receiver expects its name.
        request.headers.setdefault("Host", urlsplit(request.url).netloc.rpartition("@")[2])
        return super().send(request, stream=stream, timeout=timeout, verify=verify,
                            cert=cert, proxies=None)
