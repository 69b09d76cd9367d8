"""Quotas: how much a team may hold in an environment, enforced at submit.

A quota (models.Quota) limits a team's live resources of a type in an environment
(`max_live`: resources not gone, plus those being created: create and import requests in
flight and the members a stack has yet to record) and its requests in flight there
(`max_in_flight`, any action). A blank environment or type matches any; every quota that
matches a request applies. Updates and deletes never count against `max_live`.

A submission that a quota covers locks the matching Quota rows before it counts, inside
the transaction that records it: two submissions of one team under one quota take turns,
so the last slot goes to one of them only. A submission no quota covers locks and counts
nothing (whether one applies is read with the submission's other facts, in the query
selectors.submission_context already makes).

Over a quota, a submission is refused (409 `quota_exceeded`, naming the quota and its use),
except in an environment with `auto_approve_within_quota`: there a create or import within
every quota that covers it is queued at once (auto-approved), one beyond waits for approval
(the quota is where approval starts), and one no quota covers follows `requires_approval`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.contrib.auth.models import Group
from django.db.models import Q

from containers.settings import EnvironmentSettings
from provisioning.errors import Conflict
from provisioning.models import Quota, ResourceRequest
from provisioning.selectors import MAKING, QuotaUse, SubmissionContext, use_annotations, use_of
from provisioning.services.submission import Submission


class QuotaExceeded(Conflict):
    """A submission beyond a team's quota. `quota` lists each limit it exceeds, as data."""

    code = "quota_exceeded"

    def __init__(self, message: str, quota: Sequence[dict[str, Any]] = ()):
        super().__init__(message, self.code)
        self.quota = list(quota)

    def details(self) -> dict[str, Any]:
        return {"quota": self.quota}


@dataclass(frozen=True)
class Excess:
    """One limit a submission would pass: `adding` more where `use` holds what it does."""

    use: QuotaUse
    limit: str  # "max_live" or "max_in_flight"
    adding: int
    members: tuple[str, ...] = ()  # a stack's members that do not fit

    @property
    def maximum(self) -> int:
        return getattr(self.use.quota, self.limit)

    def describe(self) -> str:
        use, quota = self.use, self.use.quota
        if self.limit == "max_live":
            text = (f"{quota_name(quota)} is {quota.max_live} live resources; it has "
                    f"{use.held} ({use.live} live, {use.being_created} being created)")
        else:
            text = (f"{quota_name(quota)} is {quota.max_in_flight} requests in flight; it "
                    f"has {use.in_flight}")
        if self.members:
            text = (f"{text}; the stack adds {self.adding}, and members "
                    f"{', '.join(self.members)} do not fit")
        return text

    def as_data(self) -> dict[str, Any]:
        quota = self.use.quota
        data = {"team": quota.team.name, "environment": quota.environment or None,
                "resource_type": quota.resource_type or None, "limit": self.limit,
                "max": self.maximum, "live": self.use.live,
                "being_created": self.use.being_created, "in_flight": self.use.in_flight,
                "adding": self.adding}
        if self.members:
            data["members"] = list(self.members)
        return data


def quota_name(quota: Quota) -> str:
    """"team data's quota for sqs_queue in prod" (or "any type", "any environment")."""
    return (f"team {quota.team.name}'s quota for {quota.resource_type or 'any type'} in "
            f"{quota.environment or 'any environment'}")


def _matching(*, team: Group, environment: str, resource_types: Iterable[str]) -> Q:
    return Q(team=team, environment__in=[environment, ""],
             resource_type__in=[*resource_types, ""])


def quotas_locked(*, team: Group, environment: str,
                  resource_types: Iterable[str]) -> list[Quota]:
    """The team's quotas that cover `resource_types` in `environment`, locked until the
    transaction ends (in id order, so that two submissions never deadlock over them)."""
    return list(Quota.objects.select_for_update(of=("self",)).select_related("team")
                .filter(_matching(team=team, environment=environment,
                                  resource_types=resource_types)).order_by("pk"))


def quota_uses(quotas: Sequence[Quota]) -> list[QuotaUse]:
    """What each quota's team holds under it now: one query for all of them. Run it after
    quotas_locked, in the same transaction, so nothing recorded meanwhile is missed."""
    if not quotas:
        return []
    counted = {quota.pk: quota for quota in Quota.objects.filter(
        pk__in=[quota.pk for quota in quotas]).annotate(**use_annotations())}
    uses = []
    for quota in quotas:
        row = counted.get(quota.pk)
        if row is not None:  # deleted meanwhile: it no longer applies
            row.team = quota.team
            uses.append(use_of(row))
    return uses


@dataclass(frozen=True)
class Admission:
    """What quotas make of a submission: refused (`excess` in an environment that does not
    auto-approve), waiting for approval, or queued at once; `note` says why in its first
    event."""

    requires_approval: bool
    note: str
    excess: tuple[Excess, ...] = ()

    def refusal(self) -> QuotaExceeded:
        return QuotaExceeded("; ".join(excess.describe() for excess in self.excess),
                             [excess.as_data() for excess in self.excess])


def admit(*, uses: Sequence[QuotaUse], environment: EnvironmentSettings, making: int,
          moving: int, members: Sequence[tuple[str, str]] = ()) -> Admission | None:
    """Decide on a submission that adds `making` live resources and `moving` requests in
    flight under `uses` (the quotas covering it). A stack names its creates in `members`
    ((key, resource type), in order) instead: each quota counts those of its type, and an
    excess names the members that do not fit.

    None: no quota covers it (it follows `requires_approval`)."""
    if not uses:
        return None
    excess, standing = [], []
    for use in uses:
        quota = use.quota
        covered = [key for key, kind in members if quota.resource_type in ("", kind)]
        adding_live, adding_moving = ((len(covered), len(covered)) if members
                                      else (making, moving))
        for limit, held, adding in (("max_live", use.held, adding_live),
                                    ("max_in_flight", use.in_flight, adding_moving)):
            maximum = getattr(quota, limit)
            if maximum is not None and adding and held + adding > maximum:
                room = max(maximum - held, 0)
                excess.append(Excess(use=use, limit=limit, adding=adding,
                                     members=tuple(covered[room:])))
        standing.append(f"{quota_name(quota)} "
                        f"({_standing(use, adding_live, adding_moving)})")
    if excess:
        why = "; ".join(item.describe() for item in excess)
        if not environment.auto_approve_within_quota:
            return Admission(requires_approval=True, note=why, excess=tuple(excess))
        return Admission(requires_approval=True,
                         note=f"{environment.name} approves within quota only, and this is "
                              f"beyond it: {why}")
    # Auto-approved: a create or import (or a stack of them) every one of whose resources
    # a quota covers. Anything else follows requires_approval, as where no quota applies.
    every_covered = all(any(use.quota.resource_type in ("", kind) for use in uses)
                        for _, kind in members)
    if not (environment.auto_approve_within_quota and (making or members) and every_covered):
        return Admission(requires_approval=environment.requires_approval, note="")
    return Admission(requires_approval=False,
                     note=f"auto-approved: within {'; '.join(standing)}")


def _standing(use: QuotaUse, making: int, moving: int) -> str:
    """"2 of 5 live, 1 of 3 in flight": where the quota stands with this submission."""
    quota, parts = use.quota, []
    if quota.max_live is not None:
        parts.append(f"{use.held + making} of {quota.max_live} live")
    if quota.max_in_flight is not None:
        parts.append(f"{use.in_flight + moving} of {quota.max_in_flight} in flight")
    return ", ".join(parts) or "no limit set"


def quota_admit_stack(*, team: Group, environment: EnvironmentSettings,
                      members: Sequence[tuple[str, str]]) -> Admission | None:
    """What quotas make of a stack whose creates are `members` ((key, resource type), in
    order): it may not pass a quota a request could not. Locks the quotas that cover it
    (one query, made whether or not the team has any) for the transaction."""
    quotas = quotas_locked(team=team, environment=environment.name,
                           resource_types=sorted({kind for _, kind in members}))
    admission = admit(uses=quota_uses(quotas), environment=environment, making=len(members),
                      moving=len(members), members=members)
    if admission is not None and admission.excess:
        raise admission.refusal()
    return admission


def quotas_of_submission(context: SubmissionContext, *, team: Any, environment: Any,
                         resource_type: Any) -> list[Quota]:
    """The quotas that cover a submission, locked; none (and no query) where its team has
    none there. The team is the one submission_validate will choose (or none yet, if the
    submission names none it may use: then it is refused anyway)."""
    if not context.quota_team_ids or not isinstance(environment, str) or not isinstance(
            resource_type, str):
        return []
    if isinstance(team, Group):
        chosen = next((known for known in context.teams if known.pk == team.pk), None)
    elif isinstance(team, str):
        chosen = next((known for known in context.teams if known.name == team), None)
    else:
        chosen = context.teams[0] if len(context.teams) == 1 else None
    if chosen is None or chosen.pk not in context.quota_team_ids:
        return []
    return quotas_locked(team=chosen, environment=environment,
                         resource_types=[resource_type])


def quota_admit_submission(submission: Submission, *, environment: EnvironmentSettings,
                           quotas: Sequence[Quota]) -> Submission:
    """The submission as quotas decide it (its approval and the note of its first event),
    or QuotaExceeded. `quotas`: those quotas_locked found for it, in this transaction."""
    making = submission.action in MAKING and submission.target is None
    admission = admit(uses=quota_uses(quotas), environment=environment,
                      making=int(making), moving=1)
    if admission is None:
        return submission
    if admission.excess:
        raise admission.refusal()
    return replace(submission, requires_approval=admission.requires_approval,
                   note=admission.note)


def quota_admit_retry(request: ResourceRequest, *, environment: EnvironmentSettings,
                      needs_approval: bool) -> bool:
    """Whether a retried request waits for approval, its quotas considered (locked for the
    transaction); QuotaExceeded where it would pass one in an environment that does not
    auto-approve within quota."""
    admission = admit(
        uses=quota_uses(quotas_locked(team=request.team, environment=request.environment,
                                      resource_types=[request.resource_type])),
        environment=environment, moving=1,
        making=int(request.action in MAKING and request.resource_id is None))
    if admission is None:
        return needs_approval
    if admission.excess:
        raise admission.refusal()
    return admission.requires_approval


__all__ = ["QuotaExceeded", "QuotaUse", "admit", "quota_admit_retry", "quota_admit_stack",
           "quota_admit_submission", "quota_name", "quotas_of_submission",
           "quota_uses", "quotas_locked", "use_of"]
