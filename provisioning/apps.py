from django.apps import AppConfig
from django.conf import settings


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Build this process's container from KrpSettings, wire it, hand it to Celery."""
        from containers.core import build_container
        from krp_project.celery import app
        from provisioning import tasks  # noqa: F401 - registers the tasks with every app

        self.container = build_container(settings.KRP)
        app.use_container(self.container)
