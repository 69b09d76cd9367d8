"""The README's promise: the broker being down does not lose a request. POST records it
(202) and the sweep delivers it when the broker is back.

The broker is really stopped: a private one of the pass's kind on its own loopback port (a
redis-server or a RabbitMQ node, never the shared one), which the test stops and starts
again. The web process is a real runserver process using that broker and the test
database; the sweep runs as `manage.py krp sweep`. No worker runs, so whatever is published
stays in the private queue to be counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from provisioning.models import RequestStatus, ResourceRequest
from tests.fixtures.ports import free_loopback_port
from tests.fixtures.processes import ROOT, manage, start_process

pytestmark = [pytest.mark.broker, pytest.mark.private_broker,
              pytest.mark.django_db(transaction=True)]

QUEUE = "alpha"


@pytest.fixture
def web(private_broker, tmp_path) -> Iterator[str]:
    """A real web process (runserver) on a free port, with the private broker."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    process = start_process(
        manage("runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"),
        tmp_path / "web.log", env={"KRP_BROKER_URL": private_broker.url},
    )
    try:
        deadline = time.monotonic() + 60
        while get(url, "/healthz")[0] != 200:
            if process.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the web process did not come up:\n{process.log()[-4000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.stop()


@pytest.fixture
def token(requester) -> str:
    """The team member's token, committed, so the web process sees it."""
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=requester).key


def get(base: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(base + path, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


def post_request(base: str, token: str, name: str) -> tuple[int, dict]:
    return post(base, token, "/api/v1/requests/",
                {"environment": "alpha", "resource_type": "s3_bucket", "name": name})


def post(base: str, token: str, path: str, body: dict) -> tuple[int, dict]:
    """POST `body` to the web process as the token's user: the status and the JSON answer."""
    request = urllib.request.Request(
        f"{base}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def run_sweep(broker_url: str) -> dict[str, list[str]]:
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "krp_project.settings",
               "KRP_BROKER_URL": broker_url}
    done = subprocess.run(manage("krp", "sweep", "--json"), cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_request_posted_while_the_broker_is_down_is_recorded_and_the_sweep_delivers_it(
    private_broker, web, token
):
    status, first = post_request(web, token, "broker-up")
    assert status == 202, first
    assert private_broker.message_count(QUEUE) == 1
    assert ResourceRequest.objects.get(pk=first["id"]).published_at is not None

    private_broker.stop()
    started = time.monotonic()
    status, second = post_request(web, token, "broker-down")
    took = time.monotonic() - started

    assert status == 202, second
    assert took < 10, f"POST took {took:.1f}s with the broker down"
    recorded = ResourceRequest.objects.get(pk=second["id"])
    assert (recorded.status, recorded.published_at) == (RequestStatus.QUEUED, None)
    status, ready = get(web, "/readyz")
    assert status == 503, ready
    assert ready["checks"]["broker"].startswith("down"), ready
    assert ready["checks"]["database"] == "ok", ready

    private_broker.start()
    assert private_broker.message_count(QUEUE) == 1  # only the first request's message
    report = run_sweep(private_broker.url)

    assert report["published"] == [str(recorded.pk)]
    recorded.refresh_from_db()
    assert recorded.status == RequestStatus.QUEUED
    assert recorded.published_at is not None
    assert private_broker.message_count(QUEUE) == 2
