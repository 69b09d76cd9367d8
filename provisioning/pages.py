"""The HTML pages of KRP outside the admin: the front page at `/`.

What the service is and where its doors are (API docs, admin, health), and for a signed-in
user the latest requests of their teams, read through the same selector as the API's list.
"""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.resources import REGISTRY
from provisioning.selectors import request_list

RECENT_REQUESTS = 10


@require_safe
@inject
def front_page(request: HttpRequest,
               settings: KrpSettings = Provide[CoreContainer.settings]) -> HttpResponse:
    recent = None
    if request.user.is_authenticated:
        recent = list(request_list(user=request.user)[:RECENT_REQUESTS])
    return render(request, "provisioning/front_page.html", {
        "environments": settings.environments,
        "resource_types": REGISTRY.values(),
        "recent_requests": recent,
    })
