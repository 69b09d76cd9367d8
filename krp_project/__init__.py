"""The Django project: settings derived from KrpSettings, URLs, WSGI/ASGI, the Celery app."""
