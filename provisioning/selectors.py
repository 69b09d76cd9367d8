"""Reads: what a user may see. A user sees the requests and resources of their teams only;
anything else is, to them, not there (404, not 403, so ids do not leak)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from provisioning.models import Resource, ResourceRequest


def visible_teams(user: AbstractBaseUser):
    return user.groups.all()


def request_list(*, user: AbstractBaseUser) -> QuerySet[ResourceRequest]:
    """Requests of the user's teams (every team's for a superuser), newest first."""
    requests = ResourceRequest.objects.select_related("team", "requested_by", "resource")
    if not user.is_superuser:
        requests = requests.filter(team__in=visible_teams(user))
    return requests.order_by("-created_at")


def request_detail(*, user: AbstractBaseUser) -> QuerySet[ResourceRequest]:
    return request_list(user=user).prefetch_related("events")


def resource_list(*, user: AbstractBaseUser) -> QuerySet[Resource]:
    """The inventory of the user's teams (every team's for a superuser)."""
    resources = Resource.objects.select_related("team", "created_by_request")
    if not user.is_superuser:
        resources = resources.filter(team__in=visible_teams(user))
    return resources.order_by("environment", "resource_type", "name")
