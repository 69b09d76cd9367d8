"""What every `manage.py krp` test shares."""

import pytest


@pytest.fixture(autouse=True)
def no_krp_user(monkeypatch):
    """The suite's shell may export KRP_USER; each test says who acts, or nobody."""
    monkeypatch.delenv("KRP_USER", raising=False)
