"""Durations as people write them in settings and requests: "30s", "15m", "2h", "7d", "2w",
or several units at once, largest first ("1d12h").

A few lines of our own rather than a library: pytimeparse and humanfriendly read far more
("1.5 minutes", "3 days, 4:05") than a TTL should accept, and neither writes the compact
form back, which KRP shows in messages ("ttl: at most 7d in prod") and stores in warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_PART = re.compile(r"(\d{1,9})([wdhms])")
EXAMPLE = "a duration such as 30s, 15m, 2h, 7d, 2w or 1d12h"


def parse_duration(text: object) -> timedelta:
    """The timedelta `text` means; ValueError naming the accepted forms if it means none
    (or zero: nothing lives, or is warned about, for no time at all)."""
    if not isinstance(text, str):
        raise ValueError(f"must be {EXAMPLE}")
    compact = text.strip().lower()
    parts = _PART.findall(compact)
    order = [unit for unit, _ in UNITS]
    units = [unit for _, unit in parts]
    if (not parts or "".join(f"{n}{u}" for n, u in parts) != compact
            or units != sorted(set(units), key=order.index)):
        raise ValueError(f"{text!r} is not {EXAMPLE}")
    seconds = sum(int(number) * dict(UNITS)[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} is no time at all; give {EXAMPLE}")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest text parse_duration reads back as `delta` (whole seconds; "0s" for
    nothing or less), in days at most: "7d" reads more plainly than "1w"."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in UNITS[1:]:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_durations(text: str) -> tuple[timedelta, ...]:
    """A comma-separated list of durations ("2d,2h,30m"), longest first, each once;
    "none" for no warnings at all."""
    if text.strip().lower() == "none":
        return ()
    return ordered(parse_duration(part) for part in text.split(",") if part.strip())


def ordered(durations: Iterable[timedelta]) -> tuple[timedelta, ...]:
    return tuple(sorted(set(durations), reverse=True))
