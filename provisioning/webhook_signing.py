"""How KRP signs a webhook's body, and how a receiver checks it (Stripe's scheme).

Every POST carries

    KRP-Signature: t=1764512345,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
    KRP-Signature-Algorithm: hmac-sha256
    KRP-Delivery: 6f1c...   (the delivery's id: the same on every retry, to deduplicate)
    KRP-Event: succeeded

where v1 is the hex HMAC-SHA256, under the channel's secret, of `f"{t}.{body}"` (the raw
body bytes, as received). A receiver recomputes it, compares in constant time, and
rejects a timestamp older (or further ahead) than a tolerance: a captured request replayed
later no longer verifies, and a replay within the tolerance repeats a KRP-Delivery id it
has already seen. `verify` below does exactly that; it uses nothing but the standard
library, so a receiver written in Python may copy it as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

ALGORITHM = "hmac-sha256"
SIGNATURE_HEADER = "KRP-Signature"
ALGORITHM_HEADER = "KRP-Signature-Algorithm"
DELIVERY_HEADER = "KRP-Delivery"
EVENT_HEADER = "KRP-Event"
# How old (or how far ahead, for a receiver's clock behind KRP's) a signature may be.
DEFAULT_TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"


class SignatureError(ValueError):
    """The signature is missing, malformed, wrong, or too old."""


def new_secret() -> str:
    """A fresh webhook secret: 256 random bits, URL-safe, recognisable by its prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The KRP-Signature header's value for `body`, signed now (or at `timestamp`)."""
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={stamp},v1={_digest(secret, stamp, body)}"


def verify(body: bytes, header: str | None, secret: str, *,
           tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None,
           ) -> int:
    """Check a KRP-Signature header against the raw body; return its timestamp.

    Raises SignatureError if the header is missing or malformed, if no v1 signature in it
    matches (a tampered body, another secret), or if its timestamp is more than
    `tolerance_seconds` away from `now` (a replay).
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the timestamp is not a number") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(f"{SIGNATURE_HEADER} needs t= and v1=")
    expected = _digest(secret, timestamp, body)
    # Any v1 may match: a sender rotating its secret may sign with both for a while.
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("the signature does not match the body")
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance_seconds:
        raise SignatureError(f"the signature is {int(age)} s old; at most "
                             f"{tolerance_seconds} s is accepted")
    return timestamp
