"""Services: the only code that changes a request's state (HackSoft-style write side)."""

from provisioning.services.execution import Outcome, RunOutcome, execute_request
from provisioning.services.requests import (
    request_approve,
    request_cancel,
    request_retry,
    request_submit,
)
from provisioning.services.resources import resource_forget
from provisioning.services.stacks import (
    stack_advance,
    stack_approve,
    stack_cancel,
    stack_delete,
    stack_retry,
    stack_submit,
)
from provisioning.services.sweep import SweepReport, sweep

__all__ = [
    "Outcome",
    "RunOutcome",
    "SweepReport",
    "execute_request",
    "request_approve",
    "request_cancel",
    "request_retry",
    "request_submit",
    "resource_forget",
    "stack_advance",
    "stack_approve",
    "stack_cancel",
    "stack_delete",
    "stack_retry",
    "stack_submit",
    "sweep",
]
