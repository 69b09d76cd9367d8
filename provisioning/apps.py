from django.apps import AppConfig
from django.conf import settings

from containers.core import build_container
from krp_project.celery import app as celery_app


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Build this process's container from KrpSettings, wire it, hand it to Celery.

        A worker's main process replaces it at worker_init (krp_project.celery).
        """
        # Here, not at the top: the tasks module imports models, which the app registry
        # allows only once it is ready.
        from provisioning import tasks  # noqa: F401 - registers the tasks with every app
        from provisioning.metrics.requests import record_request_moved
        from provisioning.signals import request_moved

        request_moved.connect(record_request_moved, dispatch_uid="krp-metrics")

        self.container = build_container(settings.KRP, origin="django", celery_app=celery_app)
        celery_app.use_container(self.container)

        from provisioning.services.notifications import on_request_moved
        from provisioning.signals import request_moved

        request_moved.connect(on_request_moved, dispatch_uid="krp.notifications")
