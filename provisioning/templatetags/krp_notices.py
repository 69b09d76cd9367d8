"""What the admin's home page warns a user of: their teams' disabled notification
channels."""

from __future__ import annotations

from django import template
from django.utils.html import format_html_join

from provisioning.selectors import disabled_channels

register = template.Library()


@register.simple_tag
def disabled_channel_notices(user):
    """One admin warning per disabled channel of the user's teams (none for anonymous)."""
    if not getattr(user, "is_authenticated", False):
        return ""
    from provisioning.admin.notifications import disabled_notice

    notices = [(disabled_notice(channel),) for channel in disabled_channels(user=user)]
    if not notices:
        return ""
    return format_html_join("", '<ul class="messagelist"><li class="warning">{}</li></ul>',
                            notices)
