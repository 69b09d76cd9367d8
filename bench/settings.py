"""KRP's own settings, with the URLconf of the benchmark: every KRP URL plus the floor
view, so that one server (same middleware, same settings) serves both."""

from krp_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
