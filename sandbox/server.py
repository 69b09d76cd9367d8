"""The sandbox AWS: moto in server mode on loopback, with fault injection in front of it.

The embedded default's stand-in for AWS and the tests' AWS. Each environment reaches it by
assuming a role in its own account, which is how moto keeps accounts apart. The fault
layer answers a share of calls with AWS's own throttling errors, in each protocol's shape,
so that the retry path is exercised against an endpoint rather than a mock:

- rest-xml (S3): 503 SlowDown
- JSON (DynamoDB, SQS): 400 ThrottlingException
- query (IAM, STS, SNS): 400 Throttling
- smithy RPC v2 CBOR (Resource Groups Tagging): 400 ThrottlingException

DynamoDB tables are ACTIVE at once in moto. With `dynamodb_create_delay` set, the layer
reports a table as CREATING (in the CreateTable answer and in DescribeTable answers) for
that many seconds after it was made, so that waiting for ACTIVE is exercised too.

With `drop_rate` set, the layer passes a share of calls to moto and then closes the
connection without answering, as a load balancer does when it drops a connection: the
call took effect, the client cannot know it (botocore raises ConnectionClosedError).
`drop_actions` narrows it to named operations (say CreateBucket); `services` narrows it as
it narrows throttling. `deny_actions` answers named operations of any protocol with
AWS's AccessDenied (see sandbox.operations for how a call's operation is named).

`GET/POST /_krp/faults` reads and changes the fault settings of a running sandbox;
`GET /_krp/calls` counts the calls it has seen per service.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.operations import denied_response, operation_of, service_of
from sandbox.operations import drain as _drain

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Faults:
    throttle_rate: float = 0.0
    latency: float = 0.0
    services: frozenset[str] = field(default_factory=frozenset)  # empty: every service
    dynamodb_create_delay: float = 0.0  # seconds a new table stays CREATING
    # Operations (UpdateContinuousBackups, DeleteBucket, DeleteRole) answered with AWS's
    # AccessDenied: a permission error in the middle of a job.
    deny_actions: frozenset[str] = field(default_factory=frozenset)
    # A share of calls (of drop_actions' operations, or of all) that moto carries out and
    # whose connection is then closed without an answer.
    drop_rate: float = 0.0
    drop_actions: frozenset[str] = field(default_factory=frozenset)

    def update(self, document: dict[str, Any]) -> None:
        unknown = set(document) - {
            "throttle_rate", "latency", "services", "dynamodb_create_delay", "deny_actions",
            "drop_rate", "drop_actions",
        }
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        rate = float(document.get("throttle_rate", self.throttle_rate))
        latency = float(document.get("latency", self.latency))
        create_delay = float(document.get("dynamodb_create_delay", self.dynamodb_create_delay))
        drop_rate = float(document.get("drop_rate", self.drop_rate))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("throttle_rate must be between 0 and 1")
        if not 0.0 <= drop_rate <= 1.0:
            raise ValueError("drop_rate must be between 0 and 1")
        if latency < 0:
            raise ValueError("latency must not be negative")
        if create_delay < 0:
            raise ValueError("dynamodb_create_delay must not be negative")
        self.throttle_rate, self.latency = rate, latency
        self.dynamodb_create_delay, self.drop_rate = create_delay, drop_rate
        if "services" in document:
            self.services = frozenset(document["services"] or ())
        if "deny_actions" in document:
            self.deny_actions = frozenset(document["deny_actions"] or ())
        if "drop_actions" in document:
            self.drop_actions = frozenset(document["drop_actions"] or ())

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "services": sorted(self.services),
                "deny_actions": sorted(self.deny_actions),
                "drop_actions": sorted(self.drop_actions)}


def _cbor_text_map(values: dict[str, str]) -> bytes:
    """A CBOR map of short text strings: enough for an RPC v2 CBOR error body."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        return bytes([major << 5 | 24, length])

    out = head(5, len(values))
    for key, value in values.items():
        for text in (key.encode(), value.encode()):
            out += head(3, len(text)) + text
    return out


def throttling_response(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """AWS's own throttling answer for the protocol of this call."""
    request_id = str(uuid.uuid4())
    service = service_of(environ)
    content_type = environ.get("CONTENT_TYPE", "")
    if service == "s3":
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
            "<Message>Please reduce your request rate.</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        return "503 Slow Down", [("Content-Type", "application/xml")], body
    if "cbor" in content_type or environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
        body = _cbor_text_map({"__type": "ThrottlingException", "message": "Rate exceeded"})
        headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        return "400 Bad Request", headers, body
    if "json" in content_type:
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")], body.encode()
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
        "<Message>Rate exceeded</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return "400 Bad Request", [("Content-Type", "text/xml")], body


class FaultInjection:
    """WSGI middleware around moto: counts calls, adds latency, answers a share with throttling,
    and keeps new DynamoDB tables CREATING for a while."""

    def __init__(self, app: WSGIApp, faults: Faults, *, seed: int | None = None):
        self.app = app
        self.faults = faults
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._tables_created: dict[str, float] = {}  # table ARN -> time.monotonic() of creation

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        if environ.get("PATH_INFO", "").startswith("/_krp/"):
            return self._control(environ, start_response)
        service = service_of(environ)
        operation = operation_of(environ)
        with self._lock:
            self.calls[service] += 1
            faults = self.faults
            chosen = not faults.services or service in faults.services
            throttle = chosen and self._random.random() < faults.throttle_rate
            if throttle:
                self.throttled[service] += 1
            drop = chosen and not throttle and (
                not faults.drop_actions or operation in faults.drop_actions
            ) and self._random.random() < faults.drop_rate
            if drop:
                self.dropped[service] += 1
        if faults.latency:
            time.sleep(faults.latency)
        if throttle:
            _drain(environ)
            status, headers, body = throttling_response(environ)
            start_response(status, [*headers, ("Content-Length", str(len(body)))])
            return [body]
        if operation in faults.deny_actions:
            _drain(environ)
            status, headers, body = denied_response(environ, operation)
            start_response(status, [*headers, ("Content-Length", str(len(body)))])
            # A HEAD answer never carries a body: one would desynchronise the connection.
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
        if drop:
            return self._drop_after_moto(environ)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if faults.dynamodb_create_delay and target.startswith("DynamoDB_"):
            if target.endswith((".CreateTable", ".DescribeTable")):
                return self._slow_table_creation(environ, start_response, target)
        return self.app(environ, start_response)

    def _drop_after_moto(self, environ: dict[str, Any]) -> list[bytes]:
        """Let moto carry the call out, then close the connection before any answer.

        The socket is shut down under werkzeug, so the client reads end-of-stream where it
        expected a status line (botocore: ConnectionClosedError); werkzeug's own attempt to
        write the response afterwards fails on the closed socket, and it gives up on it.
        """
        _buffered(self.app, environ)
        connection = environ.get("werkzeug.socket")
        if connection is not None:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client went away first: dropped all the same
        # Raising makes werkzeug abandon the response rather than answer 500 on it.
        raise ConnectionAbortedError("sandbox fault: connection dropped after the call")

    def _slow_table_creation(
        self, environ: dict[str, Any], start_response: Callable[..., Any], target: str
    ) -> list[bytes]:
        """Call moto, then report the table CREATING if it was made less than the delay ago."""
        status, headers, body = _buffered(self.app, environ)
        if not status.startswith("200"):
            start_response(status, headers)
            return [body]
        answer = json.loads(body)
        table = answer["TableDescription" if target.endswith(".CreateTable") else "Table"]
        # Keyed by ARN, which moto's answer carries: it tells accounts and regions apart.
        arn, now = table["TableArn"], time.monotonic()
        with self._lock:
            if target.endswith(".CreateTable"):
                self._tables_created[arn] = now
            created = self._tables_created.get(arn)
        if created is not None and now - created < self.faults.dynamodb_create_delay:
            table["TableStatus"] = "CREATING"
            body = json.dumps(answer).encode()
            # botocore checks a DynamoDB answer against its x-amz-crc32 header.
            headers = [
                (name, value) for name, value in headers
                if name.lower() not in ("content-length", "x-amz-crc32")
            ]
            headers += [
                ("Content-Length", str(len(body))),
                ("x-amz-crc32", str(zlib.crc32(body))),
            ]
        start_response(status, headers)
        return [body]

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        status = "200 OK"
        if path == "/_krp/calls":
            with self._lock:
                answer: dict[str, Any] = {
                    "calls": dict(self.calls),
                    "throttled": dict(self.throttled),
                    "dropped": dict(self.dropped),
                }
        elif path == "/_krp/faults" and method == "POST":
            try:
                document = json.loads(_drain(environ) or b"{}")
                with self._lock:
                    self.faults.update(document)
                answer = self.faults.describe()
            except (ValueError, TypeError) as exc:
                status, answer = "400 Bad Request", {"error": str(exc)}
        elif path == "/_krp/faults":
            answer = self.faults.describe()
        else:
            status, answer = "404 Not Found", {"error": f"no such sandbox control {path}"}
        body = json.dumps(answer).encode()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


def _buffered(app: WSGIApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app to the end: its status, headers and whole body."""
    answer: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
        answer["status"], answer["headers"] = status, list(headers)
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return answer["status"], answer["headers"], b"".join(chunks)


def build_sandbox_app(faults: Faults, *, seed: int | None = None) -> FaultInjection:
    # Managed policies (arn:aws:iam::aws:policy/...) exist in moto only with this set,
    # and it is read when moto's IAM backend is first built.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.server import DomainDispatcherApplication, create_backend_app

    return FaultInjection(DomainDispatcherApplication(create_backend_app), faults, seed=seed)


def serve_sandbox(
    host: str, port: int, faults: Faults, *, seed: int | None = None, ready=None
) -> None:
    """Serve the sandbox on host:port until interrupted; call ready(url) once listening."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    server = make_server(
        host, port, build_sandbox_app(faults, seed=seed), threaded=True,
        request_handler=MotoRequestHandler,
    )
    if ready is not None:
        ready(f"http://{host}:{server.server_port}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
