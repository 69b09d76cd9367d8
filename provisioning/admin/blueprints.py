"""Blueprints: the stack documents a platform team publishes, and their versions.

Unlike the records the system writes, these are written here, by people with the
permissions. A version is checked as the API would instantiate it (blueprint_check), each
problem shown against its field. A version a stack has used is the record of what that
stack was made from: its page is read-only and says so; a change is a new version.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, Max
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from provisioning.admin.base import KrpAdmin
from provisioning.admin.display import NOTHING, changelist_link
from provisioning.errors import InvalidRequest
from provisioning.models import Blueprint, BlueprintVersion, Stack
from provisioning.services.blueprints import blueprint_check, blueprint_used

USED = "used by stacks: it cannot change; publish a new version instead"


class BlueprintVersionForm(forms.ModelForm):
    class Meta:
        model = BlueprintVersion
        fields = ["blueprint", "version", "document", "parameters_schema", "notes"]

    def clean(self):
        cleaned = super().clean()
        # A field whose JSON did not parse has its own error already.
        if "document" in cleaned and "parameters_schema" in cleaned:
            try:
                blueprint_check(document=cleaned["document"],
                                parameters_schema=cleaned["parameters_schema"])
            except InvalidRequest as exc:
                for field, problems in exc.fields.items():
                    for problem in problems:
                        self.add_error(field if field in self.fields else None, problem)
        return cleaned


class UsedBy:
    """How many stacks a version made, linked to their list."""

    @admin.display(description="used by")
    def used_by(self, version: BlueprintVersion):
        if version.pk is None:
            return NOTHING
        count = version.stacks.count()
        if not count:
            return "no stack yet"
        return changelist_link(Stack, f"{count} stack(s)", blueprint__id__exact=version.pk)


class BlueprintVersionInline(UsedBy, admin.TabularInline):
    """The versions, newest first, each opened on its own page (its document is too large
    for a row)."""

    model = BlueprintVersion
    fields = ["version", "notes", "used_by", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-version"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Blueprint)
class BlueprintAdmin(KrpAdmin):
    list_display = ["name", "title", "latest_version", "version_count"]
    search_fields = ["name", "title"]
    fields = ["name", "title", "description", "new_version", "created_at"]
    readonly_fields = ["new_version", "created_at"]
    inlines = [BlueprintVersionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            latest=Max("versions__version"), version_total=Count("versions"))

    @admin.display(description="latest version", ordering="latest")
    def latest_version(self, obj: Blueprint):
        return NOTHING if obj.latest is None else f"v{obj.latest}"

    @admin.display(description="versions", ordering="version_total")
    def version_count(self, obj: Blueprint) -> int:
        return obj.version_total

    @admin.display(description="publish")
    def new_version(self, obj: Blueprint):
        if obj.pk is None:
            return "save the blueprint first"
        url = reverse("admin:provisioning_blueprintversion_add")
        following = (obj.latest or 0) + 1
        return format_html('<a href="{}?{}">Add version {}</a>', url,
                           urlencode({"blueprint": obj.pk, "version": following}), following)


@admin.register(BlueprintVersion)
class BlueprintVersionAdmin(UsedBy, KrpAdmin):
    form = BlueprintVersionForm
    list_display = ["__str__", "blueprint", "version", "used_by", "created_at"]
    list_filter = ["blueprint"]
    list_select_related = ["blueprint"]
    fields = ["blueprint", "version", "document", "parameters_schema", "notes", "used_by",
              "created_at"]
    readonly_fields = ["used_by", "created_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        # A used version's page is its view-only page (no Save), which says why.
        if obj is not None and blueprint_used(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and blueprint_used(obj):
            return False
        return super().has_delete_permission(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        if obj is not None and blueprint_used(obj):
            context["subtitle"] = f"{obj} is {USED}"
        return super().render_change_form(request, context, add, change, form_url, obj)
