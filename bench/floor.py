"""The floors the accept path is compared with.

- FloorView: a bare DRF view in the same server (same middleware and settings) that
  authenticates the token, checks IsAuthenticated, reads the JSON body and answers 202.
- RawAccept: what an accept must do at the least, in-process: INSERT + COMMIT of one row
  and a Celery publish of a tiny message to the same broker.
"""

from __future__ import annotations

import uuid

from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

FLOOR_QUEUE = "bench-floor"


class FloorView(APIView):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes: list = []

    def post(self, request: Request) -> Response:
        return Response({"accepted": bool(request.data)}, status=202)


class RawAccept:
    """INSERT + COMMIT + publish, one operation at a time, on one open connection."""

    def __init__(self, broker_url: str):
        from celery import Celery
        from django.db import connection

        self.connection = connection
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor (id uuid PRIMARY KEY, "
                           "name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
        self.app = Celery("bench-floor", broker=broker_url, set_as_current=False)
        self.app.conf.broker_connection_retry_on_startup = True

    def once(self) -> None:
        from django.db import transaction

        row = uuid.uuid4()
        with transaction.atomic(), self.connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_floor (id, name) VALUES (%s, %s)",
                           [row, f"floor-{row.hex[:12]}"])
        self.app.send_task("bench.floor", args=[str(row)], queue=FLOOR_QUEUE)

    def close(self) -> None:
        from kombu import Connection

        with Connection(self.app.conf.broker_url) as conn:
            try:
                conn.default_channel.queue_purge(FLOOR_QUEUE)
            except conn.channel_errors:
                pass
        self.app.close()
