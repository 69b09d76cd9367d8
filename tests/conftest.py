"""Shared fixtures that start real components: the sandbox AWS (moto server on a free
loopback port), the Redis broker, Celery worker processes, and the test database."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from containers.core import CoreContainer
from containers.settings import KrpSettings
from tests.fixtures.processes import RunningProcess, celery_worker, manage, start_process


@pytest.fixture(scope="session")
def krp_settings() -> KrpSettings:
    return settings.KRP


@pytest.fixture
def container() -> Iterator[CoreContainer]:
    """The Django process's own container, with any test override undone afterwards."""
    from django.apps import apps

    container = apps.get_app_config("provisioning").container
    yield container
    container.reset_override()
    container.reset_singletons()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Iterator[Sandbox]:
    """`manage.py krp sandbox` on the port the test settings point every environment at."""
    port = os.environ["KRP_TEST_SANDBOX_PORT"]
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    process = start_process(manage("krp", "sandbox", "--port", port), log)
    process.wait_for("sandbox AWS listening on", timeout=60)
    yield Sandbox(f"http://127.0.0.1:{port}", process)
    process.stop()


class Sandbox:
    def __init__(self, url: str, process: RunningProcess):
        self.url = url
        self.process = process

    def _call(self, path: str, document: dict | None = None) -> dict:
        data = None if document is None else json.dumps(document).encode()
        with urllib.request.urlopen(urllib.request.Request(self.url + path, data=data)) as answer:
            return json.loads(answer.read())

    def calls(self, service: str) -> int:
        return self._call("/_krp/calls")["calls"].get(service, 0)

    def set_faults(self, **faults) -> dict:
        return self._call("/_krp/faults", faults)


@pytest.fixture
def sandbox_faults(sandbox) -> Iterator[Sandbox]:
    """The sandbox, with fault injection switched off again after the test."""
    yield sandbox
    sandbox.set_faults(throttle_rate=0.0, latency=0.0, services=[], dynamodb_create_delay=0.0,
                       deny_actions=[])


@pytest.fixture(scope="session")
def broker() -> Iterator[redis.Redis]:
    """The test Redis database, emptied before and after the session."""
    client = redis.Redis.from_url(settings.KRP.broker_url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture(scope="session")
def alpha_worker(django_db_setup, django_db_blocker, broker, sandbox, tmp_path_factory,
                 ) -> Iterator[RunningProcess]:
    """A real prefork Celery worker for alpha's queue and the control queue."""
    log = tmp_path_factory.mktemp("workers") / "alpha.log"
    worker = start_process(celery_worker("alpha", "krp", name="alpha", loglevel="DEBUG"), log)
    worker.wait_for("ready.")
    yield worker
    worker.stop()


@pytest.fixture
def start_worker(django_db_setup, broker, sandbox, tmp_path) -> Iterator:
    """Start further workers for one test; each is stopped when the test ends."""
    started: list[RunningProcess] = []

    def start(*queues: str, name: str, env: dict[str, str] | None = None) -> RunningProcess:
        worker = start_process(
            celery_worker(*queues, name=name), tmp_path / f"{name}.log", env=env
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def cloud(krp_settings, sandbox):
    """AWS clients for every environment, through the sandbox, fresh for each test."""
    from provisioning.cloud import CloudClients

    return CloudClients(krp_settings)


@pytest.fixture
def team(db):
    from django.contrib.auth.models import Group

    return Group.objects.create(name="platform")


@pytest.fixture
def requester(team):
    from django.contrib.auth.models import User

    user = User.objects.create_user("rita", password="rita-password")
    user.groups.add(team)
    return user


@pytest.fixture
def operator(team):
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("otto", password="otto-password")
    user.groups.add(team)
    user.user_permissions.add(Permission.objects.get(codename="approve_resourcerequest"))
    return User.objects.get(pk=user.pk)  # fresh: permissions are cached per instance
