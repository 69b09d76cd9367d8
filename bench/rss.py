"""rss: resident memory (VmRSS) of the web and worker processes.

After the other sections: what their gunicorn workers and Celery worker held at their end
(the largest seen). Alone (--only rss): a gunicorn and an alpha worker of its own, warmed
up with POSTs, list GETs and a few creates, then read.
"""

from __future__ import annotations

import time
from typing import Any

from bench.stats import row


def run(ctx, earlier: dict[str, Any]) -> dict[str, Any]:
    web, pool, main = [], [], []
    for section in earlier.values():
        rss = section.get("figures", {}).get("rss", {})
        web += rss.get("gunicorn_workers_kib", [])
        pool += rss.get("worker_pool_kib", [])
        main += [rss["worker_main_kib"]] if "worker_main_kib" in rss else []
    source = "the sections run before"
    if not web or not pool:
        web, pool, main = _measure_alone(ctx)
        source = "a warm-up of its own"
    figures = {"gunicorn_worker_kib": max(web), "celery_pool_kib": max(pool),
               "celery_main_kib": max(main), "source": source}
    rows = [row("rss", "gunicorn worker, MiB", figures["gunicorn_worker_kib"] / 1024),
            row("rss", "celery worker main process, MiB", figures["celery_main_kib"] / 1024),
            row("rss", "celery pool process, MiB", figures["celery_pool_kib"] / 1024)]
    return {"figures": figures, "rows": rows}


def _measure_alone(ctx) -> tuple[list[int], list[int], list[int]]:
    from bench.accept import KRP_PATH, _bodies
    from bench.components import start_gunicorn, start_sandbox, start_worker
    from bench.load import burst
    from bench.people import api_user
    from bench.processes import rss_kib

    _, token = api_user()
    start_sandbox(ctx.logs, ctx.sandbox_port, ctx.env)
    worker = start_worker(ctx.logs, ctx.env, "alpha", "alpha")
    web, port = start_gunicorn(ctx.logs, ctx.env)
    headers = {"Authorization": f"Token {token}"}
    body = _bodies()
    burst(port, headers, 4, 2.0, lambda: ("POST", KRP_PATH, body()), 202)
    burst(port, headers, 4, 2.0, lambda: ("GET", KRP_PATH, None), 200)
    from provisioning.models import ResourceRequest

    # Let the worker carry out some of what was accepted, then read.
    deadline = time.monotonic() + 10
    while (time.monotonic() < deadline
           and ResourceRequest.objects.filter(status="succeeded").count() < 10):
        time.sleep(0.2)
    return ([rss_kib(pid) for pid in web.children()],
            [rss_kib(pid) for pid in worker.children()], [rss_kib(worker.pid)])
