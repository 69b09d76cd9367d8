"""CoreContainer: the only place KRP's long-lived objects are built.

Built from KrpSettings and nothing else. Web (AppConfig.ready) and each worker process
(worker_process_init) build their own with build_container(); tests swap providers with
`container.<provider>.override(...)`.
"""

from dependency_injector import containers, providers

from containers.settings import KrpSettings
from provisioning.cloud import CloudClients, IdentityGuard
from provisioning.runtime import ProcessRuntime

# Modules whose functions receive dependencies through @inject / Provide[CoreContainer.x].
WIRED_MODULES = (
    "provisioning.services.checks",
    "provisioning.services.dispatch",
    "provisioning.services.execution",
    "provisioning.services.reconcile",
    "provisioning.services.requests",
    "provisioning.services.sweep",
)


class CoreContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=KrpSettings)

    runtime = providers.Singleton(ProcessRuntime.current, settings=settings)
    cloud = providers.Singleton(
        CloudClients, settings=settings, max_attempts=settings.provided.aws_max_attempts
    )
    identity_guard = providers.Singleton(IdentityGuard, settings=settings, clients=cloud)


def build_container(settings: KrpSettings) -> CoreContainer:
    """A new container for this process, wired into the modules that inject from it."""
    container = CoreContainer()
    # A default, not an override: tests override providers and reset their overrides
    # without losing the settings the container was built from.
    container.settings.set_default(providers.Object(settings))
    container.wire(modules=WIRED_MODULES)
    return container
