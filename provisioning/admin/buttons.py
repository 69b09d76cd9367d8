"""The operator's buttons on a record's page (a request's, a stack's): approve, cancel,
retry, delete, as its status allows and the user may.

Each button is its own POST form to an admin URL that calls the same service as the API,
so the rules (team scope, the approve permission, no self-approval, what a status allows)
and the audit events are the API's; the page comes back with what came of it as a
message, a refusal included, never an error page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from provisioning.admin.display import change_url
from provisioning.errors import KrpError
from provisioning.services.requests import APPROVE_PERMISSION

# The page's template: the admin's change form with the buttons above it.
CHANGE_FORM_WITH_BUTTONS = "admin/krp/change_form_with_buttons.html"


@dataclass(frozen=True)
class OperatorAction:
    """What an operator may do to a record: the service that does it, and the statuses
    from which the record's page offers it."""

    name: str
    service: Callable[..., Any]
    done: str
    offered_from: tuple[str, ...]


class OperatorButtons:
    """For a ModelAdmin of records with a `status` and a `requested_by`: the buttons of
    `operator_actions` on the record's page, each calling its service with the record's
    id as `service_id_argument`."""

    operator_actions: dict[str, OperatorAction] = {}
    service_id_argument = "id"
    change_form_template = CHANGE_FORM_WITH_BUTTONS

    def described(self, obj: Model) -> str:
        """The record as the messages name it: "Request 1a2b3c4d"."""
        raise NotImplementedError

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    def offered_actions(self, request: HttpRequest, obj: Model) -> list[OperatorAction]:
        """The actions whose button the page shows to this user: those the record's status
        allows and the user may take (approving needs the permission and someone else's
        record). The service decides all the same when the button is pressed."""
        offered = [a for a in self.operator_actions.values() if obj.status in a.offered_from]
        if not self.has_approve_permission(request) or obj.requested_by_id == request.user.pk:
            offered = [a for a in offered if a.name != "approve"]
        return offered

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        if obj is not None:
            context["krp_actions"] = [
                (action.name, reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_"
                                      f"{action.name}", args=[obj.pk]))
                for action in self.offered_actions(request, obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        own = [
            path(f"<path:object_id>/{name}/",
                 self.admin_site.admin_view(require_POST(self.operator_action_view)),
                 {"action": name}, name=f"{info[0]}_{info[1]}_{name}")
            for name in self.operator_actions
        ]
        # Before the admin's own: its "<path:object_id>/" would take these paths too.
        return own + super().get_urls()

    def operator_action_view(self, request: HttpRequest, object_id: str,
                             action: str) -> HttpResponse:
        """A button on the record's page: call the action's service, say what came of it,
        and go back to the page."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        operator_action = self.operator_actions[action]
        try:
            changed = operator_action.service(**{self.service_id_argument: obj.pk},
                                              user=request.user)
        except KrpError as exc:
            self.message_user(request, f"{self.described(obj)} was not {operator_action.done}: "
                              f"{exc.message}", messages.ERROR)
        else:
            self.message_user(request, f"{self.described(obj)} {operator_action.done}; "
                              f"it is now {changed.get_status_display()}.", messages.SUCCESS)
        return redirect(change_url(obj))
