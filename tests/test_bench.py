"""The benchmark suite runs from one command, prints its table and writes its figures.

Not a measurement: no figure is judged here (speed is the benchmark's business, run by
hand with `python -m bench`); only that the smallest run works end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_accept_pass_prints_the_table_and_writes_the_figures(tmp_path):
    out = tmp_path / "bench.json"
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("KRP_", "DJANGO_SETTINGS_MODULE"))}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "accept", "--rounds", "1",
         "--duration", "0.3", "--json", str(out)],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "section  measure" in done.stdout
    assert "SQL queries per POST" in done.stdout
    document = json.loads(out.read_text())
    assert document["machine"]["cpu_count"] == os.cpu_count()
    accept = document["sections"]["accept"]
    assert accept["figures"]["latency_ms"]["krp@1"]["n"] > 0
    assert accept["figures"]["queries"]["krp"] > 0
    assert {row["measure"] for row in accept["rows"]} >= {
        "p50 ms, 1 client (vs bare DRF)", "requests/s, 32 clients (vs bare)"}
