"""CoreContainer: built from KrpSettings only; each container holds its own AWS clients."""

import pytest

from containers.core import WIRED_MODULES, CoreContainer, build_container
from provisioning.cloud import CloudClients, IdentityGuard


@pytest.fixture(autouse=True)
def django_container_rewired(container):
    """build_container() wires the container it builds; give the wiring back to the Django
    process's container, so later tests inject from it again."""
    yield
    container.wire(modules=WIRED_MODULES)


def test_container_builds_clients_and_guard_from_its_settings(krp_settings):
    container = build_container(krp_settings, origin="test")

    assert container.settings() is krp_settings
    assert isinstance(container.cloud(), CloudClients)
    assert isinstance(container.identity_guard(), IdentityGuard)
    assert container.cloud() is container.cloud()
    assert container.runtime().fingerprint == krp_settings.fingerprint


def test_two_containers_share_no_aws_clients(krp_settings):
    first = build_container(krp_settings, origin="test")
    second = build_container(krp_settings, origin="test")

    assert first.cloud() is not second.cloud()
    assert first.identity_guard() is not second.identity_guard()


def test_container_without_settings_refuses_to_build():
    from dependency_injector.errors import Error

    with pytest.raises(Error):
        CoreContainer().cloud()


def test_django_process_has_one_wired_container_handed_to_celery(container):
    from krp_project.celery import app

    assert app.container is container
    assert container.settings().fingerprint == app.krp_settings.fingerprint
