"""accept: POST /api/v1/requests/ against its floors.

Through gunicorn (2 sync workers), at 1, 8 and 32 clients: KRP's POST and the bare DRF
view (bench.floor.FloorView) in the same server. In-process, one at a time: the raw
floor, INSERT + COMMIT + Celery publish. The three alternate, round after round. No
worker consumes alpha meanwhile: the queue just fills, as it would behind a busy worker.
Queries per POST are counted in-process (DRF's APIClient under CaptureQueriesContext).
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from bench.components import start_gunicorn
from bench.floor import RawAccept
from bench.load import burst
from bench.people import api_user
from bench.processes import rss_kib
from bench.stats import row, summary

CLIENTS = (1, 8, 32)
KRP_PATH, FLOOR_PATH = "/api/v1/requests/", "/bench/floor/"


def _bodies():
    """Request bodies with names never used before, s3_bucket and sqs_queue in turn."""
    run = os.urandom(3).hex()
    counter = itertools.count()

    def body() -> dict[str, Any]:
        n = next(counter)
        return {"environment": "alpha", "resource_type": ("s3_bucket", "sqs_queue")[n % 2],
                "name": f"a{run}-{n}", "spec": {}}
    return body


def run(ctx) -> dict[str, Any]:
    _, token = api_user()
    web, port = start_gunicorn(ctx.logs, ctx.env)
    headers = {"Authorization": f"Token {token}"}
    body = _bodies()
    targets = {"krp": lambda: ("POST", KRP_PATH, body()),
               "bare": lambda: ("POST", FLOOR_PATH, body())}
    duration = ctx.duration
    for target in targets.values():  # warm both gunicorn workers, connections, caches
        burst(port, headers, 4, min(0.5, duration), target, 202)

    raw = RawAccept(ctx.broker_url)
    for _ in range(20):
        raw.once()
    latencies: dict[str, list[float]] = {}
    rates: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    for round_number in range(ctx.rounds):
        order = ["krp", "bare", "raw"]
        for target in order if round_number % 2 == 0 else order[::-1]:
            if target == "raw":
                timings, deadline = [], time.perf_counter() + duration
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    raw.once()
                    timings.append((time.perf_counter() - started) * 1000)
                latencies.setdefault("raw@1", []).extend(timings)
                continue
            for clients in CLIENTS:
                key = f"{target}@{clients}"
                result = burst(port, headers, clients, duration, targets[target], 202)
                latencies.setdefault(key, []).extend(result["latencies"])
                rates.setdefault(key, []).append(result["per_second"])
                errors[key] = errors.get(key, 0) + result["errors"]
                if result["errors"]:
                    errors.setdefault("examples", result["first_errors"])
    raw.close()
    rss = {"gunicorn_workers_kib": [rss_kib(pid) for pid in web.children()]}
    web.stop()

    queries = _queries_per_post(token, body)
    figures = {
        "latency_ms": {key: summary(values) for key, values in latencies.items()},
        "requests_per_second": {key: sorted(values)[len(values) // 2]
                                for key, values in rates.items()},
        "errors": errors, "queries": queries, "rss": rss,
        "worker_consuming_alpha": False, "duration_s": duration, "rounds": ctx.rounds,
    }
    p50 = {key: value["p50"] for key, value in figures["latency_ms"].items()}
    rps = figures["requests_per_second"]
    rows = [
        row("accept", "p50 ms, 1 client (vs bare DRF)", p50["krp@1"], p50["bare@1"],
            unit="ms", target="<=1.5x",
            met=p50["krp@1"] <= 1.5 * p50["bare@1"]),
        row("accept", "p50 ms, 8 clients (vs bare DRF)", p50["krp@8"], p50["bare@8"],
            unit="ms"),
        row("accept", "p50 ms, 32 clients (vs bare DRF)", p50["krp@32"], p50["bare@32"],
            unit="ms"),
        row("accept", "requests/s, 32 clients (vs bare)", rps["krp@32"], rps["bare@32"],
            unit="/s", target=">=0.6x", met=rps["krp@32"] >= 0.6 * rps["bare@32"]),
        row("accept", "p50 ms, 1 client (vs INSERT+COMMIT+publish)", p50["krp@1"],
            p50["raw@1"], unit="ms"),
        row("accept", "SQL queries per POST (vs bare DRF)", queries["krp"], queries["bare"],
            target="<=6", met=queries["krp"] <= 6, show_ratio=False),
    ]
    return {"figures": figures, "rows": rows}


def _queries_per_post(token: str, body) -> dict[str, Any]:
    """Statements one POST runs, in-process on the section's database (after a warm-up
    POST, so one-off lookups such as content types are not counted)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    client = APIClient(HTTP_HOST="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    counts: dict[str, Any] = {}
    for target, path in (("krp", KRP_PATH), ("bare", FLOOR_PATH)):
        client.post(path, body(), format="json")
        with CaptureQueriesContext(connection) as captured:
            answer = client.post(path, body(), format="json")
        assert answer.status_code == 202, (path, answer.status_code, answer.content[:500])
        counts[target] = len(captured)
        counts[f"{target}_statements"] = [q["sql"][:240] for q in captured.captured_queries]
    return counts
