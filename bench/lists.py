"""lists: the request list, its deep pages, a filtered list, a request's detail and the
admin changelist, at 1,000 and at 100,000 requests (--quick: 10,000), through gunicorn.

Latency: one client, the items in turn, round after round, at one size and then the
other (the rows only grow, so the two sizes cannot alternate). Queries: in-process with
Django's test Client under CaptureQueriesContext, against the same database. The deep
page is found from the first page's answer: `next` links followed (cursor pagination) or
`?page=N` (page numbers), at page min(500, the last).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from bench.components import start_gunicorn
from bench.fill import TEAMS, fill_requests
from bench.load import Client
from bench.people import admin_session, api_user
from bench.processes import rss_kib
from bench.stats import row, summary

LIST = "/api/v1/requests/"
CHANGELIST = "/admin/provisioning/resourcerequest/"
DEEPEST = 500


def run(ctx) -> dict[str, Any]:
    sizes = (1_000, 10_000) if ctx.quick else (1_000, 100_000)
    repeats = 3 if ctx.quick else 5
    from django.core.management import call_command

    _, token = api_user("bench-lists", TEAMS)
    # The admin's pages need the static files' manifest, as in any deployment.
    call_command("collectstatic", interactive=False, verbosity=0)
    web, port = start_gunicorn(ctx.logs, ctx.env)
    figures: dict[str, Any] = {"sizes": list(sizes)}
    for size in sizes:
        figures[f"fill_seconds_{size}"] = fill_requests(size)
        session = admin_session()
        api = Client(port, {"Authorization": f"Token {token}"})
        admin = Client(port, {"Cookie": f"sessionid={session}"})
        items = _items(api, size)
        latencies: dict[str, list[float]] = {name: [] for name in items}
        for client_kind, path in items.values():  # warm
            _get(api if client_kind == "api" else admin, path)
        for _ in range(ctx.rounds):
            for name, (client_kind, path) in items.items():
                for _ in range(repeats):
                    latencies[name].append(_get(api if client_kind == "api" else admin, path))
        figures[size] = {
            "latency_ms": {name: summary(values) for name, values in latencies.items()},
            "queries": _queries(items, token, session),
            "paths": {name: path for name, (_, path) in items.items()},
        }
    figures["rss"] = {"gunicorn_workers_kib": [rss_kib(pid) for pid in web.children()]}
    small, big = sizes
    rows = []
    for name in figures[small]["paths"]:
        fast, slow = (figures[s]["latency_ms"][name]["p50"] for s in (small, big))
        rows.append(row("lists", f"{name}: p50 ms {big // 1000}k (vs 1k)", slow, fast,
                        unit="ms", target="<=1.3x", met=slow <= 1.3 * fast))
    for name in figures[small]["paths"]:
        few, many = (figures[s]["queries"][name] for s in (small, big))
        rows.append(row("lists", f"{name}: queries {big // 1000}k (vs 1k)", many, few,
                        target="same", met=many == few, show_ratio=False))
    return {"figures": figures, "rows": rows}


def _get(client: Client, path: str) -> float:
    status, content, ms = client.call("GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {str(content)[:300]}")
    return ms


def _items(api: Client, size: int) -> dict[str, tuple[str, str]]:
    """What is measured, as (which client, path)."""
    from django.contrib import admin

    from provisioning.models import ResourceRequest

    status, first, _ = api.call("GET", LIST)
    assert status == 200, first
    per_page = len(first["results"])
    depth = min(DEEPEST, math.ceil(size / per_page))
    if "cursor=" in (first.get("next") or ""):
        deep = first["next"]
        for _ in range(depth - 2):
            _, page, _ = api.call("GET", _path(deep))
            deep = page["next"]
        deep = _path(deep)
    else:
        deep = f"{LIST}?page={depth}"
    sample = ResourceRequest.objects.order_by("-created_at").values_list("pk", flat=True)[
        size // 2]
    admin_per_page = admin.site._registry[ResourceRequest].list_per_page
    return {
        "list page 1": ("api", LIST),
        "list deep page": ("api", deep),
        "list filtered": ("api", f"{LIST}?status=failed&environment=alpha"),
        "detail": ("api", f"{LIST}{sample}/"),
        "changelist page 1": ("admin", CHANGELIST),
        "changelist deep": ("admin", f"{CHANGELIST}?p="
                                     f"{min(DEEPEST, math.ceil(size / admin_per_page))}"),
    }


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _queries(items: dict[str, tuple[str, str]], token: str, session: str) -> dict[str, int]:
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    api = DjangoClient(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {token}")
    admin = DjangoClient(HTTP_HOST="localhost")
    admin.cookies["sessionid"] = session
    counts = {}
    for name, (kind, path) in items.items():
        client = api if kind == "api" else admin
        client.get(path)
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
        counts[name] = len(captured)
    return counts
