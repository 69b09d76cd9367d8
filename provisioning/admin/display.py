"""How the admin shows a status, an error, an ARN and a link to another record: one way
on every page. The look is in provisioning/static/provisioning/admin.css."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model, TextChoices
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

# An error's first words in a list; the whole message is the cell's title (on hover).
ERROR_PREVIEW_CHARS = 60

NOTHING = "-"


def status_badge(value: str, label: str | None = None) -> SafeString:
    """A coloured badge whose class names the status: `krp-badge krp-status-<status>`."""
    if not value:
        return format_html("{}", NOTHING)
    return format_html('<span class="krp-badge krp-status-{}">{}</span>', value.lower(),
                       label or value)


def error_summary(code: str, message: str, *, preview: int = ERROR_PREVIEW_CHARS) -> SafeString:
    """The error's code (if it has one) and the first words of its message; the whole
    message as the title."""
    if not code and not message:
        return format_html("{}", NOTHING)
    shown = Truncator(message).chars(preview)
    if not code:
        return format_html('<span class="krp-error" title="{}">{}</span>', message, shown)
    return format_html('<span class="krp-error" title="{}"><code>{}</code> {}</span>',
                       message, code, shown)


def arn(value: str) -> SafeString:
    """The whole ARN, allowed to wrap anywhere: its tail (the resource's name) is what tells
    one from another, so nothing is cut off."""
    if not value:
        return format_html("{}", NOTHING)
    return format_html('<span class="krp-arn">{}</span>', value)


def change_url(obj: Model) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def link(obj: Model | None, label: object = None) -> SafeString:
    """A link to a record's admin page, labelled with the record (or `label`)."""
    if obj is None:
        return format_html("{}", NOTHING)
    return format_html('<a href="{}">{}</a>', change_url(obj), obj if label is None else label)


def changelist_link(model: type[Model], label: str, **filters: object) -> SafeString:
    """A link to a model's admin list, filtered by `filters` (lookups on the list's model)."""
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), label)


class EventBadges:
    """An event's from and to statuses as badges labelled from `statuses` (a request's, a
    stack's), in a list of events and on the page of the record they belong to."""

    statuses: type[TextChoices]

    def status_label(self, value: str) -> str:
        return self.statuses(value).label if value in self.statuses.values else value

    @admin.display(description="from", ordering="from_status")
    def from_badge(self, event: Model):
        return status_badge(event.from_status, self.status_label(event.from_status))

    @admin.display(description="to", ordering="to_status")
    def to_badge(self, event: Model):
        return status_badge(event.to_status, self.status_label(event.to_status))


def warnings_sent(expiry_warnings: list[dict[str, str]]) -> SafeString:
    """The expiry warnings sent (a resource's or a stack's), one a line."""
    if not expiry_warnings:
        return format_html("{}", NOTHING)
    return format_html_join(
        mark_safe("<br>"), "{} ({} left; the {} warning)",
        ((item["sent_at"], item["left"], item["before"]) for item in expiry_warnings))
