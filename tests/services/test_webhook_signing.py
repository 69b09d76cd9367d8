"""A webhook's signature: verifies against its body and secret, and nothing else does."""

from __future__ import annotations

import time

import pytest

from provisioning.webhook_signing import SignatureError, new_secret, sign, verify

BODY = b'{"delivery":"d-1","event":"succeeded"}'


def test_a_signature_verifies_against_its_body_and_secret():
    secret = new_secret()
    now = int(time.time())

    assert verify(BODY, sign(BODY, secret, timestamp=now), secret) == now


def test_a_tampered_body_is_rejected():
    secret = new_secret()
    header = sign(BODY, secret)

    with pytest.raises(SignatureError, match="does not match"):
        verify(BODY.replace(b"succeeded", b"failed"), header, secret)


def test_another_secret_is_rejected():
    with pytest.raises(SignatureError, match="does not match"):
        verify(BODY, sign(BODY, new_secret()), new_secret())


def test_a_signature_older_than_the_tolerance_is_rejected_as_a_replay():
    secret = new_secret()
    header = sign(BODY, secret, timestamp=int(time.time()) - 301)

    with pytest.raises(SignatureError, match="old"):
        verify(BODY, header, secret, tolerance_seconds=300)


def test_a_restamped_timestamp_does_not_verify():
    """A replayer cannot freshen an old capture: the timestamp is part of what is signed."""
    secret = new_secret()
    old = sign(BODY, secret, timestamp=int(time.time()) - 3600)
    restamped = f"t={int(time.time())},{old.split(',')[1]}"

    with pytest.raises(SignatureError, match="does not match"):
        verify(BODY, restamped, secret)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=12", "t=soon,v1=abc"])
def test_a_missing_or_malformed_header_is_rejected(header):
    with pytest.raises(SignatureError):
        verify(BODY, header, new_secret())
