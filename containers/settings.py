"""KrpSettings: the one settings object, built from environment variables.

Web, worker, beat and every management command build the same object from the same
variables; the container is built from it and from nothing else. AWS credentials are
deliberately absent: boto3's own chain (AWS_* variables, profiles, instance roles) supplies
them, so no KRP setting can carry a secret into a log line. The one exception is not a
secret: an environment with `credentials: sandbox` (the embedded default's) signs with the
sandbox's fixed keys, so every process reaches the sandbox without AWS_* variables.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal

import dj_database_url
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from containers.durations import format_duration, parse_durations

# Re-exported: the rest of KRP imports all of its settings vocabulary from here.
from containers.environments import (
    DEFAULT_REGION,
    DEFAULT_SANDBOX_URL,
    SANDBOX_ACCESS_KEY_ID,
    SANDBOX_SECRET_ACCESS_KEY,
    EnvironmentSettings,
    parse_environments,
    sandbox_environments,
)
from containers.errors import SettingsError, explain

__all__ = [
    "BASE_DIR",
    "DEFAULT_REGION",
    "DEFAULT_SANDBOX_URL",
    "SANDBOX_ACCESS_KEY_ID",
    "SANDBOX_SECRET_ACCESS_KEY",
    "EnvironmentSettings",
    "KrpSettings",
    "SettingsError",
]

BASE_DIR = Path(__file__).resolve().parent.parent

SUPPORTED_DATABASES = {
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.sqlite3": "sqlite",
}
SUPPORTED_BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")


class KrpSettings(BaseModel):
    """Everything KRP reads from its environment, validated once, then frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Both may carry a password: kept out of repr (Django's debug page prints settings).
    database_url: str = Field(repr=False)
    broker_url: str = Field(repr=False)
    task_mode: Literal["broker", "eager"]
    environments: tuple[EnvironmentSettings, ...] = Field(min_length=1)
    control_queue: str = Field(default="krp", pattern=r"^[a-z][a-z0-9._-]{0,63}$")
    name_prefix: str = Field(default="krp", pattern=r"^[a-z][a-z0-9-]{0,15}$")
    secret_key: str = Field(min_length=16, repr=False)
    debug: bool = False
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Where `collectstatic` puts the admin's, the API docs' and the front page's files, and
    # where the web process (WhiteNoise) serves them from; None: var/static in the checkout.
    static_root: Path | None = None
    # The retry budget of one request: worker runs (each a fresh lease) and, within each
    # AWS call, botocore's own attempts. Celery retries back off exponentially with jitter
    # up to retry_backoff_max_seconds; throttling and transient errors only.
    max_attempts: int = Field(default=5, ge=1, le=50)
    aws_max_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_seconds: int = Field(default=2, ge=1, le=300)
    retry_backoff_max_seconds: int = Field(default=60, ge=1, le=900)
    # A running request's lease: renewed every third of it while the worker lives; the
    # sweep takes back a request whose lease lapsed.
    lease_seconds: int = Field(default=60, ge=3, le=3600)
    sweep_interval_seconds: int = Field(default=30, ge=1, le=3600)
    # How often beat reconciles each environment (report only); 0 turns it off.
    reconcile_interval_seconds: int = Field(default=3600, ge=0)
    # Every resource's settings are described in full (a deep check) at least once in this
    # many hours: each run deep-checks the share that keeps that promise, oldest first.
    reconcile_deep_window_hours: int = Field(default=24, ge=1, le=24 * 90)
    # How many resources reconcile describes at once (threads, under the call budget).
    reconcile_concurrency: int = Field(default=8, ge=1, le=64)
    # Publish with a countdown only this far ahead; later requests wait in the database.
    publish_horizon_seconds: int = Field(default=300, ge=0, le=3600)
    # A queued request whose message was published this long ago without starting is
    # published again (a lost message; duplicates are harmless, the first run wins).
    queued_stale_seconds: int = Field(default=900, ge=10)
    visibility_timeout_seconds: int = Field(default=3600, ge=60)
    task_time_limit_seconds: int = Field(default=900, ge=10)
    rate_limits: tuple[tuple[str, str], ...] = ()
    api_user_rate: str = Field(default="300/min", pattern=r"^\d+/(s|sec|m|min|h|hour|d|day)$")
    api_anon_rate: str = Field(default="30/min", pattern=r"^\d+/(s|sec|m|min|h|hour|d|day)$")
    api_max_body_bytes: int = Field(default=65536, ge=1024, le=10 * 1024 * 1024)
    # Django's cache (API throttle counts): one per process unless this names a Redis.
    cache_url: str | None = Field(default=None, repr=False)
    # How long throttling and network faults are retried (backing off up to
    # retry_backoff_max_seconds) before a request without a deadline fails: they are
    # weather, not failure, so they are budgeted by time, not by max_attempts.
    transient_budget_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    # How far ahead a request's not_before may lie: further is a typo more often than a plan.
    not_before_horizon_days: int = Field(default=30, ge=1, le=366)
    # How long an AWS call waits for a token of its environment's call budget before it
    # gives up with a throttle of KRP's own (retried like AWS's throttling).
    call_budget_wait_seconds: int = Field(default=30, ge=1, le=600)
    # How long a dry run of an update or delete waits for a worker of its environment to
    # describe the resource (the web process holds no credentials).
    dry_run_wait_seconds: int = Field(default=30, ge=1, le=600)
    # How long a process keeps its database connection open between HTTP requests (web) or
    # tasks (worker), with a health check before reuse; 0 opens and closes one per request
    # or task. Opening one costs more than most of what a request does with it.
    db_conn_max_age: int = Field(default=60, ge=0, le=24 * 3600)
    # Notifications (services.notifications, services.deliveries). One delivery is tried
    # up to notify_max_attempts times, backing off exponentially (with jitter) from
    # notify_backoff_seconds up to notify_backoff_max_seconds; a channel whose deliveries
    # fail webhook_max_failures times in a row (each delivery that gave up counts one, a
    # success resets the count) is disabled until its team enables it again.
    notify_max_attempts: int = Field(default=6, ge=1, le=20)
    notify_backoff_seconds: int = Field(default=10, ge=1, le=600)
    notify_backoff_max_seconds: int = Field(default=600, ge=1, le=1800)
    webhook_max_failures: int = Field(default=5, ge=1, le=1000)
    # How long one webhook POST may take (connect, and each read), in a worker; in eager
    # mode (inside a web request) at most EAGER_WEBHOOK_TIMEOUT_SECONDS.
    webhook_timeout_seconds: int = Field(default=5, ge=1, le=60)
    # Webhooks reach only public addresses (provisioning/webhook_guard.py), and addresses
    # in these networks: a receiver on the platform's own network, allowed by its operator.
    webhook_allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    # Email: console:// (printed to the process's output: the embedded default),
    # locmem:// (kept in memory: tests), smtp://[user:password@]host[:port] (smtp+tls://
    # for STARTTLS, smtps:// for TLS from the start). May carry a password: kept out of repr.
    email_url: str = Field(default="console://", repr=False)
    notify_from: str = Field(default="krp@localhost", min_length=3, max_length=254)
    # Where people reach KRP (https://krp.example.org): makes the links in notifications
    # absolute; unset, they are paths.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    # Where every process of a deployment (web workers, worker pool children, beat,
    # manage.py) writes its Prometheus metrics, for /metrics to add up (prometheus_client's
    # multiprocess mode); None: var/metrics in the checkout. Wiped when the deployment
    # starts, never by a process of its own (docs/metrics.md).
    metrics_dir: Path | None = None
    # The bearer token a scraper shows /metrics; None: only a signed-in staff user sees it.
    # A secret: kept out of repr, and no message about it ever quotes it.
    metrics_token: str | None = Field(default=None, min_length=16, max_length=512, repr=False)
    # How long before a resource expires its owners are warned, each at most once per
    # expiry (an environment's expiry_warnings replaces these).
    expiry_warnings: tuple[timedelta, ...] = (
        timedelta(days=2), timedelta(hours=2), timedelta(minutes=30))

    @model_validator(mode="after")
    def _timings_fit_the_visibility_timeout(self) -> KrpSettings:
        # A countdown or a job longer than the broker's visibility timeout runs twice.
        longest = max(
            self.publish_horizon_seconds,
            self.retry_backoff_max_seconds,
            self.task_time_limit_seconds,
            self.notify_backoff_max_seconds,
        )
        if longest * 2 > self.visibility_timeout_seconds:
            raise ValueError(
                f"KRP_VISIBILITY_TIMEOUT_SECONDS ({self.visibility_timeout_seconds}) must be at "
                f"least twice the longest countdown or job ({longest} s)"
            )
        return self

    @model_validator(mode="after")
    def _metrics_dir_is_absolute(self) -> KrpSettings:
        # Web, workers and beat may start in different directories: a relative path would
        # send each to a directory of its own, and /metrics would add up only its own.
        if self.metrics_dir is not None and not self.metrics_dir.is_absolute():
            raise ValueError(f"KRP_METRICS_DIR ({self.metrics_dir}) must be an absolute path")
        return self

    @model_validator(mode="after")
    def _queues_are_separate(self) -> KrpSettings:
        owners: dict[str, str] = {}
        for env in self.environments:
            if env.name in owners.values():
                raise ValueError(f"environment {env.name!r} is defined twice")
            if env.queue == self.control_queue:
                raise ValueError(
                    f"environment {env.name!r} uses queue {env.queue!r}, "
                    "which is KRP_CONTROL_QUEUE's"
                )
            if env.queue in owners:
                raise ValueError(
                    f"environments {owners[env.queue]!r} and {env.name!r} share queue "
                    f"{env.queue!r}; each environment needs its own queue"
                )
            owners[env.queue] = env.name
        return self

    @property
    def metrics_path(self) -> Path:
        """The directory every process writes its metrics to (KRP_METRICS_DIR)."""
        return self.metrics_dir or BASE_DIR / "var" / "metrics"

    def expiry_warnings_of(self, environment: str) -> tuple[timedelta, ...]:
        """When owners of `environment`'s resources are warned before expiry, longest
        first."""
        own = self.environment(environment).expiry_warnings
        return self.expiry_warnings if own is None else own

    def environment(self, name: str) -> EnvironmentSettings:
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)

    @property
    def environment_names(self) -> tuple[str, ...]:
        return tuple(env.name for env in self.environments)

    @property
    def queues(self) -> tuple[str, ...]:
        return (self.control_queue, *(env.queue for env in self.environments))

    @cached_property
    def database(self) -> dict[str, Any]:
        """Django's DATABASES['default'] for database_url."""
        return dj_database_url.parse(self.database_url, conn_max_age=self.db_conn_max_age,
                                     conn_health_checks=self.db_conn_max_age > 0)

    @property
    def cache(self) -> dict[str, Any]:
        """Django's CACHES['default']: shared through Redis when cache_url is set."""
        if self.cache_url:
            return {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": self.cache_url}
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}

    @property
    def email(self) -> dict[str, Any]:
        """Django's EMAIL_* settings for email_url."""
        return email_settings(self.email_url)

    @cached_property
    def fingerprint(self) -> str:
        """A stable hash of every setting that decides where a change lands.

        Web and worker must agree on it; a task message carries the producer's.
        Credentials are not part of it (they are not KRP settings) and neither are
        hosts or ports, which may legitimately differ between web and worker hosts.
        """
        facts = {
            "database": {
                "engine": SUPPORTED_DATABASES[self.database["ENGINE"]],
                "name": str(self.database["NAME"]),
            },
            "control_queue": self.control_queue,
            "environments": {env.name: env.where() for env in self.environments},
        }
        canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """What is safe to show an operator: no secret key, no broker password."""
        from kombu.utils.url import maybe_sanitize_url

        return {
            "fingerprint": self.fingerprint,
            "task_mode": self.task_mode,
            "database": {"engine": self.database["ENGINE"], "name": str(self.database["NAME"])},
            "broker_url": maybe_sanitize_url(self.broker_url),
            "control_queue": self.control_queue,
            "expiry_warnings": [format_duration(d) for d in self.expiry_warnings],
            "environments": {
                env.name: {**env.where(), "requires_approval": env.requires_approval,
                           "auto_approve_within_quota": env.auto_approve_within_quota,
                           "api_calls_per_second": env.api_calls_per_second,
                           "credentials": env.credentials, **env.lifetime()}
                for env in self.environments
            },
        }

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> KrpSettings:
        """Build the settings from KRP_* variables; raise SettingsError naming each bad one."""
        problems: list[str] = []
        values: dict[str, Any] = {}
        for field, variable, parse in _VARIABLES:
            raw = environ.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[field] = parse(raw)
            except ValueError as exc:
                problems.append(f"{variable}: {exc}")
        values.setdefault("database_url", f"sqlite:///{BASE_DIR / 'var' / 'krp.sqlite3'}")
        values.setdefault("broker_url", "redis://127.0.0.1:6379/0")
        values.setdefault("task_mode", "eager")
        values.setdefault("secret_key", "krp-embedded-default-insecure-secret-key")
        if "environments" not in values and "KRP_ENVIRONMENTS" not in environ:
            values["environments"] = sandbox_environments(
                environ.get("KRP_SANDBOX_URL") or DEFAULT_SANDBOX_URL
            )
        if problems:
            raise SettingsError("; ".join(problems))
        try:
            settings = cls(**values)
            settings.database  # noqa: B018 - parse now, so a bad URL fails at start
        except ValidationError as exc:
            raise SettingsError("; ".join(explain(exc, _FIELD_VARIABLE))) from None
        except ValueError as exc:
            raise SettingsError(f"KRP_DATABASE_URL: {exc}") from None
        engine = settings.database["ENGINE"]
        if engine not in SUPPORTED_DATABASES:
            raise SettingsError(
                f"KRP_DATABASE_URL: {engine} is not supported; use postgres://... or sqlite:///..."
            )
        return settings


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{raw!r} is not a boolean (use true or false)")


def _parse_broker_url(raw: str) -> str:
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in SUPPORTED_BROKER_SCHEMES:
        raise ValueError(
            f"scheme {scheme or '(none)'!r} is not supported; "
            f"use one of {', '.join(SUPPORTED_BROKER_SCHEMES)}"
        )
    return raw


def _parse_database_url(raw: str) -> str:
    if not re.match(r"^(postgres|postgresql|pgsql|sqlite)://", raw):
        raise ValueError("must start with postgres:// or sqlite:///")
    return raw


def _parse_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number") from None


def _parse_rate_limits(raw: str) -> tuple[tuple[str, str], ...]:
    """Type name -> Celery rate. Whether each name is a resource type is checked where the
    registry is known: the Celery app factory (krp_project.celery.check_rate_limits)."""
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(document, dict):
        raise ValueError('must be a JSON object such as {"s3_bucket": "10/m"}')
    problems = [
        f"{type_name}: {rate!r} is not a Celery rate such as '10/m'"
        for type_name, rate in document.items()
        if not isinstance(rate, str) or not re.match(r"^\d+(\.\d+)?/[smh]$", rate)
    ]
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(sorted(document.items()))


def _parse_cache_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://")):
        raise ValueError("must be a redis:// or rediss:// URL")
    return raw


EMAIL_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtp+tls": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
}


def email_settings(url: str) -> dict[str, Any]:
    """Django's EMAIL_* settings for a KRP_EMAIL_URL. Five schemes, a dozen lines: parsed
    here rather than through dj-email-url, whose last release is years old."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    settings: dict[str, Any] = {"EMAIL_BACKEND": EMAIL_BACKENDS[parts.scheme]}
    if parts.scheme.startswith("smtp"):
        settings.update(
            EMAIL_HOST=parts.hostname or "localhost",
            EMAIL_PORT=parts.port or {"smtps": 465, "smtp+tls": 587}.get(parts.scheme, 25),
            EMAIL_HOST_USER=unquote(parts.username or ""),
            EMAIL_HOST_PASSWORD=unquote(parts.password or ""),
            EMAIL_USE_TLS=parts.scheme == "smtp+tls",
            EMAIL_USE_SSL=parts.scheme == "smtps",
            EMAIL_TIMEOUT=10,
        )
    return settings


def _parse_email_url(raw: str) -> str:
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in EMAIL_BACKENDS:
        raise ValueError(f"scheme {scheme or '(none)'!r} is not supported; use console://, "
                         "locmem://, smtp://, smtp+tls:// or smtps://")
    try:
        email_settings(raw.strip())
    except ValueError as exc:  # a port that is not a number
        raise ValueError(f"not a valid URL ({exc})") from None
    return raw.strip()
def _parse_token(raw: str) -> str:
    """A bearer token: at least 16 visible ASCII characters (surrounding whitespace, such as
    a file's final newline, dropped). The message never quotes it: it is a secret."""
    token = raw.strip()
    if len(token) < 16:
        raise ValueError(f"too short ({len(token)} characters; at least 16)")
    if not all("!" <= char <= "~" for char in token):
        raise ValueError("may hold only visible ASCII characters (no spaces)")
    return token


def _parse_networks(raw: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """Comma-separated CIDRs (10.20.0.0/16, fd00::/8; an address alone is its /32 or
    /128). Host bits set (10.20.0.5/16) are refused: a typo more often than a plan."""
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ip_network(item))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a network in CIDR form ({exc})") from None
    return tuple(networks)


def _parse_hosts(raw: str) -> tuple[str, ...]:
    return tuple(host.strip() for host in raw.split(",") if host.strip())


_VARIABLES = (
    ("database_url", "KRP_DATABASE_URL", _parse_database_url),
    ("broker_url", "KRP_BROKER_URL", _parse_broker_url),
    ("task_mode", "KRP_TASK_MODE", str.strip),
    ("environments", "KRP_ENVIRONMENTS", parse_environments),
    ("control_queue", "KRP_CONTROL_QUEUE", str.strip),
    ("name_prefix", "KRP_NAME_PREFIX", str.strip),
    ("secret_key", "KRP_SECRET_KEY", str),
    ("debug", "KRP_DEBUG", _parse_bool),
    ("allowed_hosts", "KRP_ALLOWED_HOSTS", _parse_hosts),
    ("log_level", "KRP_LOG_LEVEL", lambda raw: raw.strip().upper()),
    ("static_root", "KRP_STATIC_ROOT", lambda raw: Path(raw.strip())),
    ("max_attempts", "KRP_MAX_ATTEMPTS", _parse_int),
    ("aws_max_attempts", "KRP_AWS_MAX_ATTEMPTS", _parse_int),
    ("retry_backoff_seconds", "KRP_RETRY_BACKOFF_SECONDS", _parse_int),
    ("retry_backoff_max_seconds", "KRP_RETRY_BACKOFF_MAX_SECONDS", _parse_int),
    ("lease_seconds", "KRP_LEASE_SECONDS", _parse_int),
    ("sweep_interval_seconds", "KRP_SWEEP_INTERVAL_SECONDS", _parse_int),
    ("reconcile_interval_seconds", "KRP_RECONCILE_INTERVAL_SECONDS", _parse_int),
    ("reconcile_deep_window_hours", "KRP_RECONCILE_DEEP_WINDOW_HOURS", _parse_int),
    ("reconcile_concurrency", "KRP_RECONCILE_CONCURRENCY", _parse_int),
    ("publish_horizon_seconds", "KRP_PUBLISH_HORIZON_SECONDS", _parse_int),
    ("queued_stale_seconds", "KRP_QUEUED_STALE_SECONDS", _parse_int),
    ("visibility_timeout_seconds", "KRP_VISIBILITY_TIMEOUT_SECONDS", _parse_int),
    ("task_time_limit_seconds", "KRP_TASK_TIME_LIMIT_SECONDS", _parse_int),
    ("rate_limits", "KRP_RATE_LIMITS", _parse_rate_limits),
    ("api_user_rate", "KRP_API_USER_RATE", str.strip),
    ("api_anon_rate", "KRP_API_ANON_RATE", str.strip),
    ("api_max_body_bytes", "KRP_API_MAX_BODY_BYTES", _parse_int),
    ("cache_url", "KRP_CACHE_URL", _parse_cache_url),
    ("transient_budget_seconds", "KRP_TRANSIENT_BUDGET_SECONDS", _parse_int),
    ("not_before_horizon_days", "KRP_NOT_BEFORE_HORIZON_DAYS", _parse_int),
    ("call_budget_wait_seconds", "KRP_CALL_BUDGET_WAIT_SECONDS", _parse_int),
    ("dry_run_wait_seconds", "KRP_DRY_RUN_WAIT_SECONDS", _parse_int),
    ("db_conn_max_age", "KRP_DB_CONN_MAX_AGE", _parse_int),
    ("notify_max_attempts", "KRP_NOTIFY_MAX_ATTEMPTS", _parse_int),
    ("notify_backoff_seconds", "KRP_NOTIFY_BACKOFF_SECONDS", _parse_int),
    ("notify_backoff_max_seconds", "KRP_NOTIFY_BACKOFF_MAX_SECONDS", _parse_int),
    ("webhook_max_failures", "KRP_WEBHOOK_MAX_FAILURES", _parse_int),
    ("webhook_timeout_seconds", "KRP_WEBHOOK_TIMEOUT_SECONDS", _parse_int),
    ("webhook_allowed_networks", "KRP_WEBHOOK_ALLOWED_NETWORKS", _parse_networks),
    ("email_url", "KRP_EMAIL_URL", _parse_email_url),
    ("notify_from", "KRP_NOTIFY_FROM", str.strip),
    ("public_url", "KRP_PUBLIC_URL", lambda raw: raw.strip().rstrip("/")),
    ("metrics_dir", "KRP_METRICS_DIR", lambda raw: Path(raw.strip())),
    ("metrics_token", "KRP_METRICS_TOKEN", _parse_token),
    ("expiry_warnings", "KRP_EXPIRY_WARNINGS", parse_durations),
)
_FIELD_VARIABLE = {field: variable for field, variable, _ in _VARIABLES}
