"""Reads: what a user may see. A user sees the requests and resources of their teams only;
anything else is, to them, not there (404, not 403, so ids do not leak)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from provisioning.models import Resource, ResourceRequest


def visible_to(queryset: QuerySet, *, user: AbstractBaseUser, team: str = "team") -> QuerySet:
    """Only the rows of the user's teams (every team's for a superuser)."""
    if user.is_superuser:
        return queryset
    return queryset.filter(**{f"{team}__in": user.groups.all()})


def request_list(*, user: AbstractBaseUser) -> QuerySet[ResourceRequest]:
    """Requests of the user's teams (every team's for a superuser), newest first."""
    requests = ResourceRequest.objects.select_related("team", "requested_by", "resource")
    return visible_to(requests, user=user).order_by("-created_at")


def request_detail(*, user: AbstractBaseUser) -> QuerySet[ResourceRequest]:
    return request_list(user=user).prefetch_related("events")


def resource_list(*, user: AbstractBaseUser) -> QuerySet[Resource]:
    """The inventory of the user's teams (every team's for a superuser)."""
    resources = Resource.objects.select_related("team", "created_by_request")
    return visible_to(resources, user=user).order_by("environment", "resource_type", "name")
