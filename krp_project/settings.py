"""Django settings, derived from KrpSettings (never the other way round).

A missing or malformed KRP_* variable stops the process here, before anything serves,
with a message naming the variable.
"""

import os
import sys
from pathlib import Path

from containers.settings import BASE_DIR, KrpSettings, SettingsError
from provisioning.metrics.process import use_metrics_directory

try:
    KRP = KrpSettings.from_environ(os.environ)
except SettingsError as exc:
    sys.stderr.write(f"KRP cannot start: {exc}\n")
    raise SystemExit(2) from None

# Before anything imports prometheus_client, which reads it once, at import.
try:
    use_metrics_directory(KRP.metrics_path)
except OSError as exc:
    sys.stderr.write(f"KRP cannot start: KRP_METRICS_DIR: {exc}\n")
    raise SystemExit(2) from None

SECRET_KEY = KRP.secret_key
DEBUG = KRP.debug
ALLOWED_HOSTS = list(KRP.allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "provisioning",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's, Swagger UI's, the front page's) come from the web process
    # itself in every way KRP runs (runserver without DEBUG, gunicorn, the image), from
    # STATIC_ROOT as `collectstatic` filled it.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "krp_project.urls"
WSGI_APPLICATION = "krp_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": KRP.database}
if KRP.database["ENGINE"] == "django.db.backends.sqlite3":
    Path(KRP.database["NAME"]).parent.mkdir(parents=True, exist_ok=True)

CACHES = {"default": KRP.cache}

# Notifications' second channel: EMAIL_BACKEND (console in the embedded default) and SMTP's
# host, port, user, password and TLS, from KRP_EMAIL_URL.
globals().update(KRP.email)
DEFAULT_FROM_EMAIL = KRP.notify_from

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Times to the second with their zone named, in the admin and every template.
FORMAT_MODULE_PATH = ["krp_project.formats"]
STATIC_URL = "static/"
STATIC_ROOT = KRP.static_root or BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed (gzip, brotli when installed) copies and content-hashed names, which
    # WhiteNoise serves with a far-future cache header. Needs `collectstatic` to have run:
    # bin/start, the Dockerfile and the README's broker-mode steps run it.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["provisioning.api.limits.LimitedJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "provisioning.api.limits.UserThrottle",
        "provisioning.api.limits.AnonThrottle",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "provisioning.api.pagination.KrpCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "provisioning.api.errors.krp_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "KRP API",
    "DESCRIPTION": "Self-service AWS resources: ask, watch, approve, retry. Every error has "
    "the shape {\"error\": {\"code\", \"message\", \"fields\"}}.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RequestStatusEnum": "provisioning.models.RequestStatus",
        "ResourceStatusEnum": "provisioning.models.ResourceStatus",
        "RequestActionEnum": "provisioning.models.RequestAction",
        "StackStatusEnum": "provisioning.models.StackStatus",
        "StackActionEnum": "provisioning.models.StackAction",
        "NotificationEventEnum": "provisioning.models.NotificationEvent",
        "ChannelKindEnum": "provisioning.models.ChannelKind",
    },
}

# The Celery app reads its configuration from KRP, not from here.
CELERY_RESULT_EXTENDED = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "filters": {
        "without_traceback": {"()": "krp_project.log_filters.WithoutTraceback"},
    },
    "root": {"handlers": ["console"], "level": KRP.log_level},
    # botocore's DEBUG output includes request signatures and credentials: never below
    # WARNING, whatever KRP_LOG_LEVEL says.
    "loggers": {
        **{name: {"level": "WARNING"}
           for name in ("botocore", "boto3", "s3transfer", "urllib3")},
        "botocore.credentials": {"level": "WARNING", "filters": ["without_traceback"]},
    },
}
