"""Limits on what one client may send: body size, one meaning per body, and request rate,
from KrpSettings."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from dependency_injector.wiring import Provide, inject
from redis.exceptions import RedisError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.errors import InvalidRequest
from provisioning.services.submission import has_nul

logger = logging.getLogger(__name__)


@inject
def current_settings(settings: KrpSettings = Provide[CoreContainer.settings]) -> KrpSettings:
    """The settings this process's container holds (injected per call, so an override of
    the container's settings, as tests make, takes effect at once)."""
    return settings


class BodyTooLarge(ParseError):
    default_code = "body_too_large"


class LimitedJSONParser(JSONParser):
    """JSON bodies up to KRP_API_MAX_BODY_BYTES; a larger or malformed one is a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = current_settings().api_max_body_bytes
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(f"the body is over {limit} bytes")
        if not raw.strip():
            raise ParseError("the body is empty; send a JSON object")
        try:
            document = json.loads(raw.decode((parser_context or {}).get("encoding") or "utf-8"),
                                  parse_constant=_refuse_constant,
                                  object_pairs_hook=object_without_duplicate_keys)
        except RecursionError:
            raise ParseError("the body is nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"the body is not valid JSON: {exc}") from None
        if has_nul(document):
            raise ParseError("the body contains a NUL character (\\u0000), which no field "
                             "accepts")
        return document


def object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: a key given twice means two things ("last one wins" is
    json's default); refuse it, naming the key. The CLI's --spec reads JSON the same way."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise InvalidRequest.about("body", f"the key {key!r} appears more than once; "
                                       "send each key once", "duplicate_key")
        document[key] = value
    return document


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


class FailOpenThrottle:
    """Counting fails open: when the cache holding the counts (KRP_CACHE_URL's Redis) does
    not answer, the request is let through with a warning rather than refused or failed.
    Throttling protects the service; it must not become the reason it is down."""

    # A warning when an outage begins, then one a minute while it lasts: not one per request.
    warn_every_seconds = 60.0
    _warned_at: float | None = None  # per process; None while the cache answers

    def allow_request(self, request, view) -> bool:
        try:
            allowed = super().allow_request(request, view)  # type: ignore[misc]
        except (RedisError, OSError) as exc:
            now = time.monotonic()
            last = FailOpenThrottle._warned_at
            if last is None or now - last >= self.warn_every_seconds:
                FailOpenThrottle._warned_at = now
                logger.warning("API throttle counts unavailable (%s: %s); letting requests "
                               "through unthrottled until the cache answers again",
                               type(exc).__name__, exc)
            return True
        # Only a count that reached the cache says it is back (an anonymous-rate throttle
        # does not count an authenticated caller at all).
        if FailOpenThrottle._warned_at is not None and getattr(self, "key", None) is not None:
            FailOpenThrottle._warned_at = None
            logger.warning("API throttle counts available again")
        return allowed


class UserThrottle(FailOpenThrottle, UserRateThrottle):
    """Per-user request rate (KRP_API_USER_RATE); 429 with Retry-After beyond it."""

    def get_rate(self) -> str:
        return current_settings().api_user_rate


class AnonThrottle(FailOpenThrottle, AnonRateThrottle):
    def get_rate(self) -> str:
        return current_settings().api_anon_rate
