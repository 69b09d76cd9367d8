"""What every spec is: a strict pydantic model, and how its errors read.

An error of a spec names its path (spec.subscriptions[0].queue) and says the rule in words:
a field with a pattern registers the rule it stands for (pattern_rule), so no message ever
shows the regular expression, and no Python class name or repr reaches the caller.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

# A pattern a spec field must match, and the rule it stands for in words: an error says
# the rule, never the regular expression (see pattern_rule).
PATTERN_RULES: dict[str, str] = {}


def pattern_rule(pattern: str, rule: str) -> str:
    """Register `rule`, in words, as what a value failing `pattern` is told; returns the
    pattern, for a pydantic Field or StringConstraints."""
    PATTERN_RULES[pattern] = rule
    return pattern


NAME_RULE = ("use lowercase letters, digits and dashes, starting with a letter and not "
             "ending with a dash")
NAME_PATTERN = re.compile(pattern_rule(r"^[a-z][a-z0-9-]*[a-z0-9]$", NAME_RULE))


class SpecModel(BaseModel):
    """Base of every spec: unknown fields and wrong types are refused, nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Fields that cannot change after creation; an update that changes one is refused.
    immutable_fields: ClassVar[frozenset[str]] = frozenset()


def spec_path(loc: tuple[str | int, ...]) -> str:
    """Where a problem is in a request: spec.subscriptions[0].queue (dots for keys, [i]
    for list indexes)."""
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


# pydantic's messages that name a Python class ("a valid dictionary or instance of
# KeyAttribute"), in JSON's words.
_PLAIN_MESSAGES = {
    "model_type": "Input should be a JSON object",
    "model_attributes_type": "Input should be a JSON object",
    "dict_type": "Input should be a JSON object",
    "is_instance_of": "Input is not of the accepted type",
}


def spec_problem(error: Any) -> str:
    """One pydantic error of a spec, as KRP says it: the rule a pattern stands for, never
    the pattern; "a JSON object" rather than a Python class name; a validator's own
    words without pydantic's "Value error, " prefix."""
    kind = error["type"]
    if kind == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern", ""))
        return PATTERN_RULES.get(pattern, "is not in the accepted form")
    if kind in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[kind]
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def as_json(spec: SpecModel, field_name: str) -> str:
    """A spec field's value as the request would write it (JSON), not as Python shows it."""
    return json.dumps(spec.model_dump(mode="json")[field_name], sort_keys=True)
