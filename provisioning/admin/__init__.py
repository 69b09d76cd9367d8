"""The operators' admin: watch requests and the inventory; approve, cancel, retry.

Actions go through the same services as the API (same rules, same audit events). Records
the system writes (requests, events, the inventory, reconcile runs, findings, task results)
are read-only here: no Save, Delete or Add.

Every list is scoped to the user's teams as the API is (superusers see all): requests,
resources and events by their team; task results by the request whose task id they carry;
findings by their resource's team (an orphan, which has none, by its krp:team tag);
reconcile runs by environment, to users whose teams have asked for something there.

Stacks follow the same rules (their members, events and buttons); blueprints and quotas
are the things written here by hand, by those with the permissions.

One module per concept: requests (and their events), stacks, blueprints, quotas,
inventory, reconcile, task_results, dry_runs (the audit of what people asked to see planned),
notifications (channels and their delivery log);
display holds how a status, an error, an ARN and a link look, buttons the approve /
cancel / retry (/ delete) on a record's page.
"""

from django.contrib import admin

from provisioning.admin import (
    blueprints,
    dry_runs,
    inventory,
    notifications,
    quotas,
    reconcile,
    requests,
    stacks,
    task_results,
)

# The lists need the width (a request's row fits 1400 px with its filters beside it); the
# home page and the breadcrumbs lead to every list.
admin.site.enable_nav_sidebar = False
# The home page warns a team's members of its disabled notification channels.
admin.site.index_template = "admin/krp/index.html"

__all__ = ["blueprints", "dry_runs", "inventory", "notifications", "quotas", "reconcile",
           "requests", "stacks", "task_results"]
