"""KRP_CACHE_URL's Redis going away does not take the API with it: throttle counting fails
open (requests go through, a warning is logged) and nothing answers 500.

The Redis is really stopped: a redis-server of the test's own on a free loopback port.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator

import pytest
import redis
from django.test import override_settings

from tests.api.conftest import REQUESTS
from tests.fixtures.components import PrivateRedis

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache_redis(tmp_path) -> Iterator[PrivateRedis]:
    assert shutil.which("redis-server"), "this test needs redis-server (Redis) installed"
    server = PrivateRedis(tmp_path)
    server.start()
    # The settings KRP_CACHE_URL=<this server> produces.
    with override_settings(CACHES={"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": server.url,
    }}):
        try:
            yield server
        finally:
            server.stop()


def test_the_api_answers_with_the_throttle_cache_down_and_warns(
    cache_redis, requester_api, submit, caplog
):
    assert requester_api.get(REQUESTS).status_code == 200
    with redis.Redis.from_url(cache_redis.url) as counts:
        assert counts.keys("*throttle_user*"), "the throttle did not count in this Redis"
    with_redis = cache_redis.process

    cache_redis.stop()
    assert with_redis.process.poll() is not None  # really gone
    with caplog.at_level(logging.WARNING, logger="provisioning.api.limits"):
        listed = requester_api.get(REQUESTS)
        posted = submit(requester_api, name="while-cache-down")

    assert listed.status_code == 200, listed.content
    assert posted.status_code == 202, posted.content
    warnings = [r.getMessage() for r in caplog.records if r.name == "provisioning.api.limits"]
    # One warning for the outage, not one per request.
    assert len(warnings) == 1 and "unthrottled" in warnings[0], caplog.text
