"""The table printed at the end of a run, from every section's rows."""

from __future__ import annotations

from typing import Any

HEADER = ("section", "measure", "KRP", "floor", "ratio", "target", "met?")


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if value != value:  # NaN: nothing was measured
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) < 10 \
        else f"{value:.1f}"
    return f"{text} {unit}".strip() if unit in ("ms", "s") else text


def table(results: dict[str, Any]) -> str:
    lines = []
    for section, result in results.items():
        if result.get("error"):
            lines.append((section, "FAILED (see the JSON's error)", "-", "-", "-", "-", "-"))
        for item in result.get("rows", []):
            met = {True: "yes", False: "NO", None: ""}[item["met"]]
            lines.append((item["section"], item["measure"], _number(item["krp"], item["unit"]),
                          _number(item["floor"], item["unit"]),
                          "-" if item["ratio"] is None else f"{item['ratio']:.2f}x",
                          item["target"] or "", met))
    widths = [max(len(str(line[i])) for line in [HEADER, *lines]) for i in range(len(HEADER))]
    rule = "  ".join("-" * width for width in widths)
    def line_of(cells) -> str:
        return "  ".join(str(cell).rjust(width) if 2 <= i <= 4 else str(cell).ljust(width)
                         for i, (cell, width) in enumerate(zip(cells, widths, strict=True)))

    out = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)), rule]
    out += [line_of(line) for line in lines]
    return "\n".join(line.rstrip() for line in out)
