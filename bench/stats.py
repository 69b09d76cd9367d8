"""Medians, p95s and the rows of the final table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], share: float) -> float:
    """The value below which `share` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"p50": statistics.median(values) if values else float("nan"),
            "p95": percentile(values, 0.95), "n": len(values)}


def ratio(krp: float | None, floor: float | None) -> float | None:
    if krp is None or not floor:
        return None
    return krp / floor


def row(section: str, measure: str, krp: float | None, floor: float | None = None, *,
        unit: str = "", target: str = "", met: bool | None = None,
        show_ratio: bool = True) -> dict[str, Any]:
    """One line of the final table: KRP's figure, its floor's, their ratio, the target."""
    return {"section": section, "measure": measure, "krp": krp, "floor": floor,
            "ratio": ratio(krp, floor) if show_ratio else None, "unit": unit,
            "target": target, "met": met}
