"""Shared fixtures: the settings, the Django process's container, AWS clients and users.

The fixtures that start real components (the sandbox AWS, the test broker, Celery worker
processes) live in tests/fixtures/components.py; real web processes in tests/fixtures/web.py,
the browser in tests/fixtures/browser.py and webhook receivers in tests/fixtures/receivers.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dependency_injector import providers
from django.conf import settings

from containers.core import CoreContainer
from containers.settings import KrpSettings

# Only the root conftest may declare plugins; this one is the root.
pytest_plugins = [
    "tests.fixtures.components",
    "tests.fixtures.web",
    "tests.fixtures.browser",
    "tests.fixtures.receivers",
]


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


@pytest.fixture
def long_lease(container, krp_settings):
    """For runs made in the test process inside the test's transaction (django_db without
    transaction=True): a lease long enough that the run's keeper never renews it during
    the test. The keeper renews on a connection of its own, which cannot see the test's
    uncommitted rows, so with the suite's 6 s lease any run slower than 2 s (a loaded
    machine) would take its lease for lost and stop, fenced, half done."""
    container.settings.override(
        providers.Object(krp_settings.model_copy(update={"lease_seconds": 600})))
    container.reset_singletons()


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
