"""KRP's benchmark suite: `python -m bench` (see bench/README.md).

Each section starts what it needs (its own PostgreSQL database, a private Redis, the
sandbox AWS, gunicorn, Celery workers), measures KRP and its floor in alternating rounds,
and reports medians and p95s; the table at the end compares them with issue 14's targets.
"""
