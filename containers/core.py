"""CoreContainer: the only place KRP's long-lived objects are built.

Built from KrpSettings and nothing else. Each process builds its own with build_container():
Django at AppConfig.ready(), a worker's main process at worker_init, each prefork child at
worker_process_init. Tests swap providers with `container.<provider>.override(...)`.
"""

from celery import Celery
from dependency_injector import containers, providers

from containers.settings import KrpSettings
from provisioning.budget import CallBudget
from provisioning.cloud import CloudClients, IdentityGuard
from provisioning.runtime import ContainerOrigin, ProcessRuntime

# Modules whose functions receive dependencies through @inject / Provide[CoreContainer.x].
WIRED_MODULES = (
    "provisioning.api.limits",
    "provisioning.cli.check",
    "provisioning.cli.imports",
    "provisioning.cli.reconcile",
    "provisioning.cli.records",
    "provisioning.cli.sandbox",
    "provisioning.filtersets",
    "provisioning.health",
    "provisioning.metrics.views",
    "provisioning.pages",
    "provisioning.services.channels",
    "provisioning.services.deliveries",
    "provisioning.services.dispatch",
    "provisioning.services.dry_runs",
    "provisioning.services.execution",
    "provisioning.services.expiry",
    "provisioning.services.imports",
    "provisioning.services.lifetimes",
    "provisioning.services.notifications",
    "provisioning.services.reconcile",
    "provisioning.services.requests",
    "provisioning.services.stacks",
    "provisioning.services.stack_expiry",
    "provisioning.services.sweep",
)


class CoreContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=KrpSettings)
    # Where this container was built (see ContainerOrigin), so a task can say which it used.
    origin = providers.Dependency(instance_of=str)
    # The Celery app this process publishes through (its task registry and broker).
    celery_app = providers.Dependency(instance_of=Celery)

    runtime = providers.Singleton(ProcessRuntime.current, settings=settings, origin=origin)
    # The per-environment AWS call budget every process shares (through Redis where it can).
    call_budget = providers.Singleton(CallBudget, settings=settings)
    cloud = providers.Singleton(
        CloudClients, settings=settings, max_attempts=settings.provided.aws_max_attempts,
        budget=call_budget,
    )
    identity_guard = providers.Singleton(IdentityGuard, settings=settings, clients=cloud)


def build_container(settings: KrpSettings, *, origin: ContainerOrigin,
                    celery_app: Celery | None = None) -> CoreContainer:
    """A new container for this process, wired into the modules that inject from it.

    `celery_app` is the app this process publishes through; a container built without one
    (a test's) cannot publish.
    """
    container = CoreContainer()
    # Defaults, not overrides: tests override providers and reset their overrides
    # without losing what the container was built from.
    container.settings.set_default(providers.Object(settings))
    container.origin.set_default(providers.Object(origin))
    if celery_app is not None:
        container.celery_app.set_default(providers.Object(celery_app))
    container.wire(modules=WIRED_MODULES)
    return container
