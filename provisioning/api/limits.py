"""Limits on what one client may send: body size and request rate, from KrpSettings."""

from __future__ import annotations

import json

from dependency_injector.wiring import Provide, inject
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from containers.core import CoreContainer
from containers.settings import KrpSettings


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
                                  parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError("the body is nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"the body is not valid JSON: {exc}") from None
        if _has_nul(document):
            raise ParseError("the body contains a NUL character (\\u0000), which no field "
                             "accepts")
        return document


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _has_nul(value) -> bool:
    """PostgreSQL cannot store NUL in text or jsonb: refuse it here, as bad input."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class UserThrottle(UserRateThrottle):
    """Per-user request rate (KRP_API_USER_RATE); 429 with Retry-After beyond it."""

    def get_rate(self) -> str:
        return current_settings().api_user_rate


class AnonThrottle(AnonRateThrottle):
    def get_rate(self) -> str:
        return current_settings().api_anon_rate
