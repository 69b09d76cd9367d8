"""Plans: what a request will change in the cloud, field by field, before it changes it.

A plan compares what the cloud holds now (the type's describe(), its settings in the
spec's own shape, and the tags) with what the request will make it hold (the type's
expected_settings of the request's spec, and its tags):

    will update s3_bucket krp-alpha-logs: 2 changes
    versioning: false -> true
    tags.owner: + "data"

A create needs no look (it says what it will make); an update and a delete describe the
resource, and their plan keeps a fingerprint of what they saw (`observed`). Where the
environment requires approval, a worker of the request's environment plans the request
before it waits (the task `krp.plan`), and the approver approves that plan; if the cloud
no longer matches it when the request runs, the run stops and plans again (execution).
Elsewhere the run records its plan as it starts. An update whose plan has no changes
succeeds without a mutating call.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.utils import timezone

from provisioning.models import RequestAction, RequestStatus, ResourceRequest
from provisioning.resources.base import KRP_TAG_PREFIX, Observed, ProvisionContext, ResourceType

ABSENT = object()


class PlanChanged(Exception):
    """The cloud no longer matches the plan that was approved: the new plan comes along."""

    def __init__(self, plan: dict[str, Any]):
        super().__init__("the cloud changed since the plan was approved")
        self.plan = plan


def fingerprint(observed: Observed | None) -> str | None:
    """What a plan saw of the resource, as a hash: its settings and its user tags."""
    if observed is None:
        return None
    seen = {"settings": observed.settings, "tags": user_tags(observed.tags)}
    return hashlib.sha256(json.dumps(seen, sort_keys=True, default=str).encode()).hexdigest()


def plan_of(request: ResourceRequest, kind: ResourceType, spec: Any,
            ctx: ProvisionContext | None, *, current: Observed | None = None,
            looked: bool = False) -> dict[str, Any]:
    """The plan of `request` (its parsed `spec`) against what `ctx` reaches. `current`,
    with `looked`, is the resource as the caller just described it (None: not there). A
    create needs no look, and no context."""
    target = f"{kind.name} {request.physical_name}"
    if request.action == RequestAction.CREATE:
        made = {key: value for key, value in kind.expected_settings(spec).items()
                if value is not None}  # what it leaves unset is not worth a line
        changes = _diff({}, made) + _diff({}, dict(request.tags), prefix="tags.")
        return _plan("create", [f"will create {target}"], changes, observed=None)
    if not looked:
        current = kind.describe(ctx)
    if request.action == RequestAction.IMPORT:
        if current is None:
            return _plan("import", [f"{target} is not in the cloud: nothing to import"], [],
                         observed=None, missing=True)
        read = spec if spec is not None else kind.parse_spec(kind.spec_from(current))
        changes = _diff({}, kind.expected_settings(read)) + _diff(
            user_tags(current.tags), {**user_tags(current.tags), **request.tags},
            prefix="tags.")
        return _plan("import", [f"will import {target} as {request.environment}/"
                                f"{request.name}, with the settings it has, and tag it as "
                                "KRP's"], changes, observed=fingerprint(current))
    if current is None:
        what = "update" if request.action == RequestAction.UPDATE else "delete"
        return _plan(what, [f"{target} is not in the cloud: nothing to {what}"], [],
                     observed=None, missing=True)
    if request.action == RequestAction.DELETE:
        notes = kind.delete_notes(ctx, current)
        head = f"will delete {target}" + (f" and {' and '.join(notes)}" if notes else "")
        return _plan("delete", [head], [], observed=fingerprint(current))
    changes = _diff(current.settings, kind.expected_settings(spec)) + _diff(
        user_tags(current.tags), dict(request.tags), prefix="tags.")
    head = (f"will update {target}: {len(changes)} change{'s' if len(changes) != 1 else ''}"
            if changes else f"no changes to {target}")
    return _plan("update", [head], changes, observed=fingerprint(current))


def record(request: ResourceRequest, plan: dict[str, Any], *,
           only_while: str | None = None, only_unplanned: bool = False) -> bool:
    """Keep `plan` on the request (only while it is `only_while`, when given; only if it
    has none yet, with `only_unplanned`)."""
    rows = ResourceRequest.objects.filter(pk=request.pk)
    if only_while is not None:
        rows = rows.filter(status=only_while)
    if only_unplanned:
        rows = rows.filter(plan__isnull=True)
    done = bool(rows.update(plan=plan))
    if done:
        request.plan = plan
    return done


def check(request: ResourceRequest, plan: dict[str, Any]) -> None:
    """Before a run changes anything: raise PlanChanged if the cloud differs from what the
    plan an approver approved saw; otherwise keep this run's plan on the request (once: a
    later attempt of the same request goes on from what its first attempt saw, which may
    be its own partial work)."""
    approved = request.plan
    if approved is not None and approved.get("checked"):
        return
    # A plan that could not be made was approved blind: this run's plan stands for it.
    was_approved = bool(approved and approved.get("approved") and "error" not in approved)
    if was_approved and approved.get("observed") != plan["observed"]:
        raise PlanChanged(plan)
    # Only for the run that still holds the request: a stalled run writes nothing.
    ResourceRequest.objects.filter(
        pk=request.pk, status=RequestStatus.RUNNING, lease_owner=request.lease_owner,
        lease_generation=request.lease_generation,
    ).update(plan={**(approved if was_approved else plan), "checked": True})


def failed(code: str, message: str) -> dict[str, Any]:
    """A plan that could not be made, saying why."""
    return {"action": None, "lines": [f"could not plan: {code}: {message}"], "changes": [],
            "no_changes": False, "missing": False, "observed": None,
            "error": {"code": code, "message": message},
            "planned_at": timezone.now().isoformat()}


def _plan(action: str, head: list[str], changes: list[dict[str, Any]], *,
          observed: str | None, missing: bool = False) -> dict[str, Any]:
    return {
        "action": action,
        "lines": head + [change_text(change) for change in changes],
        "changes": changes,
        "no_changes": action == "update" and not changes and not missing,
        "missing": missing,
        "observed": observed,
        "planned_at": timezone.now().isoformat(),
    }


def _diff(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[dict]:
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, ABSENT), after.get(key, ABSENT)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changes.extend(_diff(old, new, prefix=f"{prefix}{key}."))
            continue
        change: dict[str, Any] = {"path": f"{prefix}{key}"}
        if old is not ABSENT:
            change["from"] = old
        if new is not ABSENT:
            change["to"] = new
        changes.append(change)
    return changes


def change_text(change: dict[str, Any]) -> str:
    """One change as a person reads it: `versioning: false -> true`, `tags.owner: + "data"`,
    `tags.old: - "x"`."""
    if "from" not in change:
        return f"{change['path']}: + {_json(change['to'])}"
    if "to" not in change:
        return f"{change['path']}: - {_json(change['from'])}"
    return f"{change['path']}: {_json(change['from'])} -> {_json(change['to'])}"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in tags.items() if not key.startswith(KRP_TAG_PREFIX)}


def creation_plan(kind: ResourceType, physical_name: str, spec: dict[str, Any],
                  tags: dict[str, str]) -> dict[str, Any]:
    """What creating a stack's member will make, its spec as written (references shown as
    they stand until the members they name exist)."""
    changes = _diff({}, spec) + _diff({}, dict(tags), prefix="tags.")
    return _plan("create", [f"will create {kind.name} {physical_name}"], changes,
                 observed=None)


def public(plan: dict[str, Any] | None) -> dict[str, Any] | None:
    """A plan as people see it: what it saw of the cloud, as a hash, is the worker's."""
    if plan is None:
        return None
    return {key: value for key, value in plan.items() if key != "observed"}
