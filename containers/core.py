"""CoreContainer: the only place KRP's long-lived objects are built.

Built from KrpSettings and nothing else. Web (AppConfig.ready) and each worker process
(worker_process_init) build their own with build_container(); tests swap providers with
`container.<provider>.override(...)`.
"""

from celery import Celery
from dependency_injector import containers, providers

from containers.settings import KrpSettings
from provisioning.cloud import CloudClients, IdentityGuard
from provisioning.runtime import ProcessRuntime

# Modules whose functions receive dependencies through @inject / Provide[CoreContainer.x].
WIRED_MODULES = (
    "provisioning.api.limits",
    "provisioning.cli.check",
    "provisioning.cli.reconcile",
    "provisioning.cli.sandbox",
    "provisioning.health",
    "provisioning.services.dispatch",
    "provisioning.services.execution",
    "provisioning.services.reconcile",
    "provisioning.services.requests",
    "provisioning.services.sweep",
)


class CoreContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=KrpSettings)
    # The Celery app this process publishes through (its task registry and broker).
    celery_app = providers.Dependency(instance_of=Celery)

    runtime = providers.Singleton(ProcessRuntime.current, settings=settings)
    cloud = providers.Singleton(
        CloudClients, settings=settings, max_attempts=settings.provided.aws_max_attempts
    )
    identity_guard = providers.Singleton(IdentityGuard, settings=settings, clients=cloud)


def build_container(settings: KrpSettings, *, celery_app: Celery | None = None) -> CoreContainer:
    """A new container for this process, wired into the modules that inject from it.

    `celery_app` is the app this process publishes through; a container built without one
    (a test's) cannot publish.
    """
    container = CoreContainer()
    # Defaults, not overrides: tests override providers and reset their overrides
    # without losing what the container was built from.
    container.settings.set_default(providers.Object(settings))
    if celery_app is not None:
        container.celery_app.set_default(providers.Object(celery_app))
    container.wire(modules=WIRED_MODULES)
    return container
