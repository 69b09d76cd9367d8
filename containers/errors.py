"""SettingsError, and how a validation error becomes a message naming the bad variable."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError


class SettingsError(ValueError):
    """A KRP_* variable is missing or malformed; the message names the variable."""


def explain(exc: ValidationError, names: Mapping[str, str], prefix: str = "") -> list[str]:
    """One line per error: `<VARIABLE or prefix.field>: <what is wrong>`."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        where = names.get(loc[0], loc[0]) if loc else ""
        path = ".".join([prefix + where, *loc[1:]]) if where else prefix.rstrip(".")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch":
            expected = EXPECTED.get(loc[-1], f"must match {error['ctx']['pattern']}")
            message = f"{error['input']!r} is not valid (expected {expected})"
        lines.append(f"{path}: {message}" if path else message)
    return lines


# What a field that failed its pattern should look like, in words.
EXPECTED = {
    "name": "lowercase letters, digits and dashes, starting with a letter",
    "account_id": "12 digits",
    "region": "an AWS region such as ap-northeast-2",
    "role_arn": "an IAM role ARN such as arn:aws:iam::111111111111:role/krp-provisioner",
    "endpoint_url": "an http:// or https:// URL",
    "queue": "lowercase letters, digits, dots, dashes and underscores",
    "control_queue": "lowercase letters, digits, dots, dashes and underscores",
    "name_prefix": "up to 16 lowercase letters, digits and dashes, starting with a letter",
    "api_user_rate": "a rate such as 300/min",
    "api_anon_rate": "a rate such as 30/min",
}
