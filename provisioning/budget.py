"""One AWS call budget per environment, shared by every process through Redis.

AWS rate-limits an account's API, not a worker: Celery's rate_limit is per worker process,
so N workers (and the reconcile job) would send N times the rate. Every AWS call a
provisioner or reconcile makes therefore takes a token from its environment's budget first
(CloudClients hooks botocore's `before-send` event, so each HTTP attempt counts, botocore's
own retries included), waiting for one up to KRP_CALL_BUDGET_WAIT_SECONDS and then giving
up with a throttling error that the request retries like AWS's own.

The budget is a moving window of `api_calls_per_second` per second, kept by the `limits`
library in Redis (one Lua script per take, so concurrent processes cannot overdraw it): at
most that many calls in any one-second window, across every process that shares the
Redis. Where the budget lives: the broker's Redis in broker mode, else KRP_CACHE_URL,
else nowhere shared: each process then keeps its own budget (`krp check` warns). If the
shared Redis does not answer, a call takes from the process's own budget instead (with a
warning) rather than failing: the budget protects AWS's limits, it must not stop KRP.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kombu.utils.url import maybe_sanitize_url
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from containers.settings import KrpSettings
from provisioning.errors import TransientCloudError
from provisioning.metrics import instruments as metrics

logger = logging.getLogger(__name__)

KEY_PREFIX = "krp:call-budget"
# How long to sleep at most between two tries for a token; the window frees a token as
# soon as its oldest call is a second old, so short sleeps waste nothing.
POLL_SECONDS = 0.05


class CallBudgetExhausted(TransientCloudError):
    """No token came within the wait: a throttle of KRP's own, retried like AWS's."""

    code = "CallBudgetExhausted"


def shared_budget_url(settings: KrpSettings) -> str | None:
    """The Redis that holds the shared budget, or None (each process keeps its own)."""
    if settings.task_mode == "broker" and settings.broker_url.startswith(("redis://",
                                                                         "rediss://")):
        return settings.broker_url
    return settings.cache_url


class CallBudget:
    """Per-environment token budgets; `take(environment)` blocks until a call may go."""

    def __init__(self, settings: KrpSettings):
        self._settings = settings
        self._url = shared_budget_url(settings)
        self._items = {
            env.name: RateLimitItemPerSecond(env.api_calls_per_second)
            for env in settings.environments
        }
        self._wait = settings.call_budget_wait_seconds
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        self._lock = threading.Lock()
        self._warned_at = 0.0

    @property
    def shared(self) -> bool:
        return self._url is not None

    def take(self, environment: str) -> None:
        """Take one call's token from `environment`'s budget, waiting for it if need be;
        raise CallBudgetExhausted when none came within the wait."""
        item = self._items.get(environment)
        if item is None:
            return
        give_up_at = time.monotonic() + self._wait
        while True:
            limiter = self._limiter()
            try:
                if limiter.hit(item, environment):
                    return
                reset_at = limiter.get_window_stats(item, environment).reset_time
            except Exception as exc:  # noqa: BLE001 - any storage failure: fall back, say so
                self._fell_back(exc)
                if self._local.hit(item, environment):
                    return
                reset_at = self._local.get_window_stats(item, environment).reset_time
            now = time.monotonic()
            if now >= give_up_at:
                metrics.call_budget_exhausted(environment)
                raise CallBudgetExhausted(
                    f"environment {environment!r} used its AWS call budget "
                    f"({item.amount} calls/s) and no call was free within {self._wait} s",
                )
            pause = min(max(reset_at - time.time(), 0.0), POLL_SECONDS, give_up_at - now)
            time.sleep(max(pause, 0.001))

    def describe(self) -> dict[str, Any]:
        """What `krp check` shows: each environment's rate and where its budget is kept."""
        where = (f"shared through {maybe_sanitize_url(self._url)}" if self._url
                 else "per process (no shared Redis: set KRP_CACHE_URL or use a Redis broker)")
        return {name: {"calls_per_second": item.amount, "kept": where}
                for name, item in self._items.items()}

    def status(self) -> str:
        """'ok', 'per process', or 'down: <why>' for the shared Redis (never raises)."""
        if self._url is None:
            return "per process"
        try:
            return "ok" if self._limiter().storage.check() else "down: no answer"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return f"down: {type(exc).__name__}"

    def _limiter(self) -> MovingWindowRateLimiter:
        if self._url is None:
            return self._local
        with self._lock:
            if self._shared is None:
                storage = RedisStorage(self._url, key_prefix=KEY_PREFIX,
                                       socket_timeout=2, socket_connect_timeout=2)
                self._shared = MovingWindowRateLimiter(storage)
            return self._shared

    def _fell_back(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            logger.warning("AWS call budget: shared Redis unavailable (%s: %s); each process "
                           "keeps its own budget until it answers", type(exc).__name__, exc)
