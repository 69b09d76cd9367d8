"""Benchmark: the admin's request list over 100,000 requests.

Measures the time to render the ResourceRequest changelist (first page, a status filter, a
search by name and by task id) and the number of SQL queries each takes, over a PostgreSQL
database holding N requests (default 100,000) with their events.

    .venv/bin/python bench/admin_changelist.py [--rows 100000] [--repeat 5]

Uses (creates, fills and keeps) the database named by KRP_BENCH_DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/krp_bench); a second run reuses its rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["KRP_DATABASE_URL"] = os.environ.get(
    "KRP_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/krp_bench"
)
os.environ.setdefault("KRP_TASK_MODE", "eager")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "krp_project.settings")


def ensure_database() -> None:
    import psycopg

    from containers.settings import KrpSettings

    database = KrpSettings.from_environ(os.environ).database
    with psycopg.connect(host=database["HOST"], port=database["PORT"] or 5432,
                         user=database["USER"], dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              [database["NAME"]]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database["NAME"]}"')


def fill(rows: int) -> None:
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from provisioning.models import RequestEvent, ResourceRequest

    have = ResourceRequest.objects.count()
    if have >= rows:
        print(f"database already holds {have} requests")
        return
    teams = [Group.objects.get_or_create(name=f"team-{i}")[0] for i in range(10)]
    users = []
    for i in range(20):
        user, _ = User.objects.get_or_create(username=f"user-{i}")
        user.groups.add(teams[i % 10])
        users.append(user)
    statuses = ["queued", "running", "succeeded", "failed", "pending_approval"]
    types = ["s3_bucket", "sqs_queue", "sns_topic", "dynamodb_table", "iam_role"]
    now = timezone.now()
    started = time.perf_counter()
    batch = 5000
    for offset in range(have, rows, batch):
        requests = [
            ResourceRequest(
                environment="alpha" if n % 3 else "prod", resource_type=types[n % 5],
                name=f"res-{n}", action="create", status=statuses[n % 5],
                requested_by=users[n % 20], team=teams[n % 10], physical_name=f"krp-x-res-{n}",
                task_id=str(uuid.uuid4()), outputs={"arn": f"arn:aws:s3:::krp-x-res-{n}"},
                created_at=now,
            )
            for n in range(offset, min(offset + batch, rows))
        ]
        ResourceRequest.objects.bulk_create(requests)
        RequestEvent.objects.bulk_create(
            RequestEvent(request=r, from_status="", to_status=r.status, actor="bench")
            for r in requests
        )
    print(f"filled {rows - have} requests in {time.perf_counter() - started:.1f} s")


def measure(repeat: int) -> None:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from provisioning.models import ResourceRequest

    admin = User.objects.filter(username="bench-admin").first() or (
        User.objects.create_superuser("bench-admin", "a@b.c", "x")
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    url = reverse("admin:provisioning_resourcerequest_changelist")
    sample = ResourceRequest.objects.order_by("created_at").first()
    cases = {
        "first page": {},
        "status=failed": {"status__exact": "failed"},
        "env+type filter": {"environment": "prod", "resource_type": "iam_role"},
        "search name": {"q": "res-4242"},
        "search task id": {"q": sample.task_id},
        "page 500": {"p": "500"},
    }
    print(f"{'case':<18} {'p50 ms':>8} {'max ms':>8} {'queries':>8}")
    for name, params in cases.items():
        client.get(url, params)  # warm
        timings, queries = [], 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url, params)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
            queries = len(captured)
        print(f"{name:<18} {statistics.median(timings):>8.1f} {max(timings):>8.1f} "
              f"{queries:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    fill(args.rows)
    measure(args.repeat)


if __name__ == "__main__":
    main()
