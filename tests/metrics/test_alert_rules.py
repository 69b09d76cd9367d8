"""The alert rules and the metrics document name only metrics KRP exports, and the
document describes every one of them: neither can drift from the code unnoticed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from provisioning.metrics import instruments
from provisioning.metrics.database import DatabaseCollector

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC_NAME = re.compile(r"\bkrp_(?!project\b)[a-z0-9_]+\b")  # not the package
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
                   "gauge": ("",)}
# What each kind of metric is written as in the document: its family's exposed name.
DOCUMENTED_AS = {"counter": "_total", "histogram": "", "gauge": ""}


@pytest.fixture
def families(krp_settings) -> dict[str, str]:
    """Every metric family KRP exports: name -> type (recorded by processes, and read from
    the database at a scrape)."""
    found = {family.name: family.type
             for metric in vars(instruments).values() if isinstance(metric, MetricWrapperBase)
             for family in metric.describe()}
    found.update({family.name: family.type
                  for family in DatabaseCollector(krp_settings).describe()})
    return found


def test_alert_rules_name_only_metrics_krp_exports(families):
    samples = {family + suffix for family, kind in families.items()
               for suffix in SAMPLE_SUFFIXES[kind]}
    rules = [rule for group in yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
             ["groups"] for rule in group["rules"]]

    assert {"KrpQueueStuck", "KrpRequestFailureRate", "KrpDriftFound",
            "KrpSweepNotRunning"} <= {rule["alert"] for rule in rules}
    for rule in rules:
        named = set(METRIC_NAME.findall(rule["expr"] + str(rule.get("annotations", {}))))
        assert named, f"{rule['alert']} names no KRP metric"
        assert named <= samples, f"{rule['alert']} names {sorted(named - samples)}"


def test_the_metrics_document_describes_every_metric_and_no_other(families):
    document = (DOCS / "metrics.md").read_text()
    exported = {name + DOCUMENTED_AS[kind] for name, kind in families.items()}
    samples = {family + suffix for family, kind in families.items()
               for suffix in SAMPLE_SUFFIXES[kind]}

    assert {name for name in exported if f"`{name}`" not in document} == set()
    assert set(METRIC_NAME.findall(document)) - samples - exported == set()
