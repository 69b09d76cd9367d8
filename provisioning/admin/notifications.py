"""Notification channels and their delivery log in the admin.

Operators (and a team's staff) add a channel for a team here; a webhook's secret is shown
once, in the message after it is saved, and never in a form after that (the field is not
editable). A disabled channel wears a badge and its reason, the admin's home page and the
channel list warn its team's members, and the "enable" action turns it on again. The
delivery log is read-only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from provisioning.admin.base import KrpAdmin, ReadOnlyAdmin
from provisioning.admin.display import NOTHING, changelist_link, link, status_badge
from provisioning.errors import InvalidRequest
from provisioning.models import ChannelKind, Delivery, NotificationChannel, NotificationEvent
from provisioning.selectors import disabled_channels, visible_to
from provisioning.services.channels import channel_create, channels_enable, check_channel

# The latest deliveries a channel's page shows; the delivery list has them all.
DELIVERIES_ON_PAGE = 20


class ChannelForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=NotificationEvent.choices,
                                       widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = NotificationChannel
        fields = ["team", "kind", "target", "events"]
        help_texts = {"target": "a webhook's http(s) URL (no credentials in it), or an "
                                "email address"}

    def clean(self):
        values = super().clean()
        if self.errors:
            return values
        try:
            # A channel's kind is fixed once made (a webhook has a secret, an email none).
            kind, target, events = check_channel(kind=values.get("kind") or self.instance.kind,
                                                 target=values.get("target"),
                                                 events=list(values.get("events") or []))
        except InvalidRequest as exc:
            for field, problems in exc.fields.items():
                self.add_error("target" if field in ("url", "email") else field,
                               "; ".join(problems))
            return values
        values.update(kind=kind, target=target, events=events)
        return values


@admin.register(NotificationChannel)
class NotificationChannelAdmin(KrpAdmin):
    form = ChannelForm
    list_display = ["__str__", "team", "event_list", "state", "consecutive_failures",
                    "created_at"]
    list_filter = ["kind", "enabled", "team"]
    search_fields = ["target", "team__name"]
    list_select_related = ["team"]
    actions = ["enable"]
    readonly_fields = ["state", "consecutive_failures", "disabled_at", "disabled_reason",
                       "created_by", "created_at", "recent_deliveries"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["team", "kind", "target", "events"]
        return ["team", "kind", "target", "events", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else ["kind", *self.readonly_fields]

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), user=request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team" and not request.user.is_superuser:
            kwargs["queryset"] = request.user.groups.order_by("name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        channel, secret = channel_create(team=obj.team, kind=obj.kind, target=obj.target,
                                         events=obj.events, created_by=request.user)
        # The admin goes on with `obj` (its log entry, its redirect): make it the row saved.
        obj.pk, obj.created_at, obj.created_by = channel.pk, channel.created_at, request.user
        obj._state.adding, obj._state.db = False, channel._state.db
        if secret:
            messages.warning(request, format_html(
                "The webhook's secret, shown this once (KRP never shows it again; a "
                "receiver checks the KRP-Signature header with it): <code>{}</code>", secret))

    def changelist_view(self, request, extra_context=None):
        for channel in disabled_channels(user=request.user):
            messages.warning(request, disabled_notice(channel))
        return super().changelist_view(request, extra_context)

    @admin.display(description="events")
    def event_list(self, channel: NotificationChannel) -> str:
        return ", ".join(channel.events) or NOTHING

    @admin.display(description="state", ordering="enabled")
    def state(self, channel: NotificationChannel):
        if channel.enabled:
            return status_badge("enabled")
        return format_html('{} <span class="krp-error">{}</span>',
                           status_badge("disabled"), channel.disabled_reason)

    @admin.display(description="latest deliveries")
    def recent_deliveries(self, channel: NotificationChannel):
        latest = list(channel.deliveries.order_by("-created_at", "-id")[:DELIVERIES_ON_PAGE])
        if not latest:
            return NOTHING
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((link(delivery, f"{delivery.created_at:%Y-%m-%d %H:%M:%S}"), delivery.event,
              status_badge(delivery.status), delivery.attempts,
              delivery.last_status_code or NOTHING, delivery.last_error or NOTHING)
             for delivery in latest))
        return format_html(
            "<table><tr><th>created</th><th>event</th><th>status</th><th>attempts</th>"
            "<th>HTTP</th><th>last error</th></tr>{}</table>{}", rows,
            changelist_link(Delivery, "every delivery of this channel", channel=channel.pk))

    @admin.action(description="Enable the selected channels again", permissions=["change"])
    def enable(self, request, queryset) -> None:
        count = channels_enable(channels=queryset.select_related("team"), user=request.user)
        self.message_user(request, f"{count} channel(s) enabled again.", messages.SUCCESS)


def disabled_notice(channel: NotificationChannel):
    """The warning a member of the channel's team reads in the admin."""
    return format_html(
        "Team {}'s {} channel {} is disabled: {} Enable it again once the receiver works "
        "(the channel's list: action \u201cEnable\u201d; or POST "
        "/api/v1/notification-channels/{}/enable/).",
        channel.team.name, ChannelKind(channel.kind).label.lower(), link(channel),
        channel.disabled_reason, channel.pk)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "channel_link", "event", "status_badge", "attempts",
                    "last_status_code", "last_error", "finished_at"]
    list_filter = ["status", "event", "channel__kind"]
    list_select_related = ["channel", "channel__team"]
    fields = ["id", "channel_link", "event", "status_badge", "attempts", "last_status_code",
              "last_error", "next_attempt_at", "payload", "created_at", "finished_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), user=request.user,
                          team="channel__team")

    @admin.display(description="channel")
    def channel_link(self, delivery: Delivery):
        return link(delivery.channel, f"{delivery.channel} ({delivery.channel.team.name})")

    @admin.display(description="status", ordering="status")
    def status_badge(self, delivery: Delivery):
        return status_badge(delivery.status)
