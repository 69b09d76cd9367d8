"""worker: a create end to end through one worker process against the same provisioner
calls made directly in a loop.

KRP: N requests of a type submitted in one transaction (so all are published at its
commit), carried out by one prefork worker with one pool process; per request = the time
from the commit to the last one's finished_at, over N. Direct: the type's provisioner
create() called N times in a loop in this process, with plain boto3 clients of the same
role, region and endpoint (the same AWS calls, without KRP's task, lease, fence, call
budget and result backend). The two alternate, round after round. AWS calls per create
come from the sandbox's counter (GET /_krp/calls), for both.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from bench.components import calls_since, sandbox_calls, start_sandbox, start_worker
from bench.people import api_user
from bench.processes import rss_kib
from bench.stats import row, summary

SPECS: dict[str, dict[str, Any]] = {
    "s3_bucket": {},
    "sqs_queue": {},
    "sns_topic": {},
    "dynamodb_table": {"partition_key": {"name": "id", "type": "S"}},
    "iam_role": {"trusted_service": "lambda.amazonaws.com"},
}
ENVIRONMENT = "alpha"


class DirectClients:
    """boto3 clients for one environment's role, region and endpoint, and nothing else:
    what a provisioner's ctx.client() hands out, minus KRP's call budget and retries."""

    def __init__(self, settings):
        import boto3

        self.env = settings.environment(ENVIRONMENT)
        sts = boto3.client("sts", region_name=self.env.region, endpoint_url=self.env.endpoint_url)
        credentials = sts.assume_role(RoleArn=self.env.role_arn,
                                      RoleSessionName="krp-bench")["Credentials"]
        self.session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"], region_name=self.env.region)
        self.clients: dict[str, Any] = {}

    def client(self, environment: str, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.session.client(service,
                                                        endpoint_url=self.env.endpoint_url)
        return self.clients[service]


def run(ctx) -> dict[str, Any]:
    from django.conf import settings

    types = ["s3_bucket", "sqs_queue"] if ctx.quick else list(SPECS)
    per_round = 5 if ctx.quick else 20
    user, _ = api_user()
    start_sandbox(ctx.logs, ctx.sandbox_port, ctx.env)
    worker = start_worker(ctx.logs, ctx.env, ENVIRONMENT, "alpha")
    direct = DirectClients(settings.KRP)
    suffix = os.urandom(2).hex()
    names = iter(range(1_000_000))

    def krp_batch(kind: str, count: int) -> dict[str, Any]:
        return _krp_batch(ctx, user, kind, [f"w{suffix}-{next(names)}" for _ in range(count)])

    def direct_batch(kind: str, count: int) -> dict[str, Any]:
        return _direct_batch(ctx, direct, kind, [f"d{suffix}-{next(names)}"
                                                 for _ in range(count)])

    for kind in types:  # warm-up: the worker's identity check, connections, imports
        krp_batch(kind, 1)
        direct_batch(kind, 1)
    figures: dict[str, Any] = {}
    for kind in types:
        batches: dict[str, list[dict[str, Any]]] = {"krp": [], "direct": []}
        for round_number in range(ctx.rounds):
            order = [("krp", krp_batch), ("direct", direct_batch)]
            for target, batch in order if round_number % 2 == 0 else order[::-1]:
                batches[target].append(batch(kind, per_round))
        figures[kind] = {target: _combine(done) for target, done in batches.items()}
        figures[kind]["overhead_ms"] = (figures[kind]["krp"]["per_request_ms"]
                                        - figures[kind]["direct"]["per_request_ms"])
    figures["rss"] = {"worker_main_kib": rss_kib(worker.pid),
                      "worker_pool_kib": [rss_kib(pid) for pid in worker.children()]}
    figures["requests_per_round"] = per_round
    rows = []
    for kind in types:
        krp, floor = figures[kind]["krp"], figures[kind]["direct"]
        rows.append(row("worker", f"{kind}: ms per create (vs direct)", krp["per_request_ms"],
                        floor["per_request_ms"], unit="ms"))
        rows.append(row("worker", f"{kind}: overhead ms per request",
                        figures[kind]["overhead_ms"], None, unit="ms", target="<10 ms",
                        met=figures[kind]["overhead_ms"] < 10))
        rows.append(row("worker", f"{kind}: AWS calls per create (vs direct)",
                        krp["calls_per_request"], floor["calls_per_request"]))
    return {"figures": figures, "rows": rows}


def _krp_batch(ctx, user, kind: str, names: list[str]) -> dict[str, Any]:
    from django.db import transaction

    from provisioning.models import TERMINAL_STATUSES, RequestStatus, ResourceRequest
    from provisioning.services import request_submit

    before = sandbox_calls(ctx.sandbox_url)
    with transaction.atomic():
        ids = [request_submit(user=user, environment=ENVIRONMENT, resource_type=kind, name=name,
                              spec=SPECS[kind])[0].pk for name in names]
        began = time.time()  # the commit publishes them all
    deadline = time.monotonic() + 60 + 10 * len(ids)
    while ResourceRequest.objects.filter(pk__in=ids).exclude(
            status__in=TERMINAL_STATUSES).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{kind}: requests not finished in time: see "
                               f"{ctx.logs}/worker-alpha.log")
        time.sleep(0.01)
    done = list(ResourceRequest.objects.filter(pk__in=ids))
    failed = [f"{r.error_code}: {r.error_message}" for r in done
              if r.status != RequestStatus.SUCCEEDED]
    if failed:
        raise RuntimeError(f"{kind}: {len(failed)} request(s) failed, e.g. {failed[0]}")
    finished = max(r.finished_at for r in done).timestamp()
    return {"seconds": finished - began, "count": len(ids),
            "calls": calls_since(before, sandbox_calls(ctx.sandbox_url)),
            "run_ms": [(r.finished_at - r.started_at).total_seconds() * 1000 for r in done
                       if r.started_at]}


def _direct_batch(ctx, direct: DirectClients, kind_name: str, names: list[str]) -> dict[str, Any]:
    from django.conf import settings

    from provisioning.resources import REGISTRY
    from provisioning.resources.base import ProvisionContext

    kind = REGISTRY[kind_name]
    spec = kind.parse_spec(SPECS[kind_name])
    before = sandbox_calls(ctx.sandbox_url)
    began = time.perf_counter()
    timings = []
    for name in names:
        started = time.perf_counter()
        target = ProvisionContext.build(
            settings=settings.KRP, clients=direct, environment=ENVIRONMENT,
            physical_name=kind.physical_name(prefix="direct", environment=ENVIRONMENT,
                                             name=name, spec=spec),
            creating_request_id=str(uuid.uuid4()), team="bench", user_tags={},
            # Names never used, as KRP's first creates: the same calls, nothing more.
            first_use=True)
        kind.create(target, spec)
        timings.append((time.perf_counter() - started) * 1000)
    return {"seconds": time.perf_counter() - began, "count": len(names),
            "calls": calls_since(before, sandbox_calls(ctx.sandbox_url)), "run_ms": timings}


def _combine(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Per request over every round: total time over total requests (and the median of
    the rounds' figures), calls per request by service, each run's own time."""
    count = sum(b["count"] for b in batches)
    calls: dict[str, int] = {}
    for batch in batches:
        for service, n in batch["calls"].items():
            calls[service] = calls.get(service, 0) + n
    per_round = sorted(b["seconds"] * 1000 / b["count"] for b in batches)
    return {
        "per_request_ms": per_round[len(per_round) // 2],
        "per_request_ms_rounds": per_round,
        "calls_per_request": sum(calls.values()) / count,
        "calls_per_request_by_service": {s: n / count for s, n in calls.items()},
        "run_ms": summary([ms for b in batches for ms in b["run_ms"]]),
    }
