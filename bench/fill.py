"""Rows for the list benchmarks: N requests with their events, in bulk (absorbs the old
bench/admin_changelist.py): 10 teams, 20 users, every status, type and both environments."""

from __future__ import annotations

import time
import uuid

STATUSES = ["queued", "running", "succeeded", "failed", "pending_approval"]
TYPES = ["s3_bucket", "sqs_queue", "sns_topic", "dynamodb_table", "iam_role"]
TEAMS = tuple(f"team-{i}" for i in range(10))
BATCH = 5000


def fill_requests(rows: int) -> float:
    """Add requests until the database holds `rows`; answers the seconds it took."""
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.utils import timezone

    from provisioning.models import RequestEvent, ResourceRequest

    started = time.perf_counter()
    have = ResourceRequest.objects.count()
    teams = [Group.objects.get_or_create(name=name)[0] for name in TEAMS]
    users = []
    for i in range(20):
        user, _ = User.objects.get_or_create(username=f"user-{i}")
        user.groups.add(teams[i % 10])
        users.append(user)
    now = timezone.now()
    for offset in range(have, rows, BATCH):
        requests = [
            ResourceRequest(
                environment="alpha" if n % 3 else "prod", resource_type=TYPES[n % 5],
                name=f"res-{n}", action="create", status=STATUSES[n % 5],
                requested_by=users[n % 20], team=teams[n % 10], physical_name=f"krp-x-res-{n}",
                task_id=str(uuid.uuid4()), outputs={"arn": f"arn:aws:s3:::krp-x-res-{n}"},
                created_at=now,
            )
            for n in range(offset, min(offset + BATCH, rows))
        ]
        ResourceRequest.objects.bulk_create(requests)
        RequestEvent.objects.bulk_create(
            RequestEvent(request=r, from_status="", to_status=r.status, actor="bench")
            for r in requests
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have by then
    return time.perf_counter() - started
