"""Reading metrics: this process's own values (what a test made here moves), and a scrape
of /metrics parsed with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

# tests/settings.py's KRP_METRICS_TOKEN.
TOKEN = "krp-test-metrics-token-never-logged"


def local(name: str, **labels: str) -> float:
    """A sample of this process's own metrics (0 where nothing was recorded yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(text: str, name: str, **labels: str) -> float:
    """A sample of a /metrics answer: the sum over samples of `name` whose labels include
    `labels` (0 where there is none)."""
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())
