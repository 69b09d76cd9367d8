"""reconcile: one environment's reconcile at 1,000 and 10,000 resources (--quick: 200).

The resources are made directly in the sandbox (boto3 in a thread pool, KRP's tags, the
fewest calls that make each one) and recorded in the inventory in bulk (a succeeded
create request and a Resource row each), the types in turn: s3_bucket, sqs_queue,
sns_topic, dynamodb_table, iam_role. Then provisioning.services.reconcile runs in this
process (report only, as beat runs it), timed, with the AWS calls it made by service (the
sandbox's counter before and after).

"existence+tags calls / 100" counts the Resource Groups Tagging API calls per 100
resources of the types that API lists (the issue's <= 2 target); "all calls / 100" counts
every call of the run per 100 resources, the describes included.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.components import calls_since, sandbox_calls, start_sandbox
from bench.people import api_user
from bench.stats import row
from bench.worker import SPECS, DirectClients

ENVIRONMENT = "alpha"
ORDER = ("s3_bucket", "sqs_queue", "sns_topic", "dynamodb_table", "iam_role")
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


def run(ctx) -> dict[str, Any]:
    from django.conf import settings

    from provisioning.resources import REGISTRY

    sizes = (200,) if ctx.quick else (1_000, 10_000)
    user, _ = api_user()
    start_sandbox(ctx.logs, ctx.sandbox_port, ctx.env)
    clients = DirectClients(settings.KRP)
    for service in ("s3", "sqs", "sns", "dynamodb", "iam"):
        clients.client(ENVIRONMENT, service)  # made here: clients, not sessions, are shared
    figures: dict[str, Any] = {}
    made = 0
    rows = []
    for size in sizes:
        started = time.perf_counter()
        _make(clients, user, range(made, size))
        made = size
        figures[f"make_seconds_{size}"] = time.perf_counter() - started
        figures[size] = _reconcile(ctx)
        listable = sum(1 for n in range(size) if REGISTRY[ORDER[n % len(ORDER)]].listed_by_tag)
        figure = figures[size]
        tagging = figure["calls"].get("tagging", 0) + figure["calls"].get(
            "resourcegroupstaggingapi", 0)
        figure["existence_calls_per_100"] = 100 * tagging / listable
        figure["all_calls_per_100"] = 100 * sum(figure["calls"].values()) / size
        big = size >= 10_000
        rows += [
            row("reconcile", f"{size:,} resources: seconds", figure["seconds"], unit="s",
                target="<60 s" if big else "", met=figure["seconds"] < 60 if big else None),
            row("reconcile", f"{size:,}: existence+tags calls / 100",
                figure["existence_calls_per_100"], target="<=2",
                met=figure["existence_calls_per_100"] <= 2),
            row("reconcile", f"{size:,}: all calls / 100 resources",
                figure["all_calls_per_100"]),
        ]
    return {"figures": figures, "rows": rows}


def _reconcile(ctx) -> dict[str, Any]:
    from provisioning.services.reconcile import reconcile

    before = sandbox_calls(ctx.sandbox_url)
    started = time.perf_counter()
    run = reconcile(environment=ENVIRONMENT, triggered_by="bench")
    seconds = time.perf_counter() - started
    findings: dict[str, int] = {}
    for kind in run.findings.values_list("kind", flat=True):
        findings[kind] = findings.get(kind, 0) + 1
    return {"seconds": seconds, "status": run.status, "checked": run.checked,
            "error": run.error, "findings": findings,
            "calls": calls_since(before, sandbox_calls(ctx.sandbox_url))}


def _make(clients: DirectClients, user, numbers: range) -> None:
    """Each resource in the sandbox (in parallel), then its rows in bulk."""
    from django.conf import settings

    from provisioning.models import Resource, ResourceRequest
    from provisioning.resources import REGISTRY
    from provisioning.resources.base import ProvisionContext

    team = user.groups.first()
    planned = []
    for n in numbers:
        kind = REGISTRY[ORDER[n % len(ORDER)]]
        name = f"r{n}"
        request_id = uuid.uuid4()
        ctx = ProvisionContext.build(
            settings=settings.KRP, clients=clients, environment=ENVIRONMENT,
            physical_name=kind.physical_name(prefix=settings.KRP.name_prefix,
                                             environment=ENVIRONMENT, name=name,
                                             spec=kind.parse_spec(SPECS[kind.name])),
            creating_request_id=str(request_id), team=team.name, user_tags={})
        planned.append((kind, name, request_id, ctx))
    with ThreadPoolExecutor(8) as pool:
        arns = list(pool.map(lambda item: _create(item[0].name, item[3]), planned))
    requests = [ResourceRequest(id=request_id, environment=ENVIRONMENT, resource_type=kind.name,
                                name=name, spec=SPECS[kind.name], status="succeeded",
                                requested_by=user, team=team, physical_name=ctx.physical_name,
                                task_id=str(uuid.uuid4()), outputs={"arn": arn})
                for (kind, name, request_id, ctx), arn in zip(planned, arns, strict=True)]
    ResourceRequest.objects.bulk_create(requests, batch_size=2000)
    Resource.objects.bulk_create(
        [Resource(environment=ENVIRONMENT, resource_type=kind.name, name=name,
                  physical_name=ctx.physical_name, physical_id=ctx.physical_name, arn=arn,
                  spec=SPECS[kind.name], tags=ctx.tags, outputs={"arn": arn}, team=team,
                  created_by_request_id=request_id)
         for (kind, name, request_id, ctx), arn in zip(planned, arns, strict=True)],
        batch_size=2000)


def _create(kind: str, ctx) -> str:
    """The fewest calls that make a tagged resource of `kind`; its ARN."""
    from provisioning.resources.base import tag_list

    name, tags = ctx.physical_name, ctx.tags
    client = ctx.clients.client(ENVIRONMENT, {"s3_bucket": "s3", "sqs_queue": "sqs",
                                              "sns_topic": "sns", "dynamodb_table": "dynamodb",
                                              "iam_role": "iam"}[kind])
    if kind == "s3_bucket":
        client.create_bucket(Bucket=name, CreateBucketConfiguration={
            "LocationConstraint": ctx.region})
        client.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(tags)})
        client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            key: True for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                  "RestrictPublicBuckets")})
        client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        return f"arn:aws:s3:::{name}"
    if kind == "sqs_queue":
        client.create_queue(QueueName=name, tags=tags)
        return f"arn:aws:sqs:{ctx.region}:{ctx.account_id}:{name}"
    if kind == "sns_topic":
        return client.create_topic(Name=name, Tags=tag_list(tags))["TopicArn"]
    if kind == "dynamodb_table":
        return client.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            Tags=tag_list(tags))["TableDescription"]["TableArn"]
    return client.create_role(RoleName=name, Path="/krp/", AssumeRolePolicyDocument=TRUST,
                              Tags=tag_list(tags))["Role"]["Arn"]
