"""KRP's Prometheus metrics (docs/metrics.md).

- `process`: the directory every process writes to, and each process's name in it; no
  prometheus_client import, so krp_project.settings can prepare it first;
- `instruments`: the metrics, and what the sweep, reconcile and the AWS clients record;
- `requests`: what a request's moves record (a receiver of provisioning.signals);
- `database`: what is read from the database when /metrics is scraped;
- `views`: /metrics itself, behind a bearer token.
"""
