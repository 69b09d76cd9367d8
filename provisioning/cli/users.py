"""krp createuser: a user in a team, optionally an approver or an operator, in one step.

A team is a Django group. Approving needs the permission the services check
(`provisioning.approve_resourcerequest`); it is given to the user, never to the team, so
that a team's members do not all become approvers. An operator is staff (may log into the
admin) with the permissions the admin's lists and actions ask for. Running it again for an
existing user adds the teams and applies the flags given; it never fails for "exists".
Whoever runs manage.py already holds the database, so no --user is asked for.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from provisioning.cli import Subcommand
from provisioning.services.requests import APPROVE_PERMISSION

# What the admin asks of an operator: read every KRP list (stacks and blueprints too), run
# the request and stack actions, set quotas. Publishing blueprints is not in it: grant
# add/change_blueprint(version) to those who do.
OPERATOR_PERMISSIONS = (
    ("provisioning", "view_resourcerequest"),
    ("provisioning", "change_resourcerequest"),
    ("provisioning", "view_resource"),
    ("provisioning", "view_requestevent"),
    ("provisioning", "view_reconcilerun"),
    ("provisioning", "view_finding"),
    ("provisioning", "view_stack"),
    ("provisioning", "view_blueprint"),
    ("provisioning", "view_blueprintversion"),
    ("provisioning", "view_dryrun"),
    # Operators set the teams' quotas (and so see every team's).
    ("provisioning", "view_quota"),
    ("provisioning", "add_quota"),
    ("provisioning", "change_quota"),
    ("provisioning", "delete_quota"),
    ("django_celery_results", "view_taskresult"),
)


def _permissions(*names: tuple[str, str]) -> list[Permission]:
    return [Permission.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in names]


class CreateUser(Subcommand):
    name = "createuser"
    help = "make a user in a team (made if new), optionally an approver or an operator"
    description = (
        "Make USERNAME a member of each --team (a team is made if it does not exist). "
        "--approver lets the user approve requests (never their own); --operator lets them "
        "into the admin with its request lists and actions. --password asks for a password "
        "(read from standard input when it is not a terminal); --token prints the user's "
        "API token. Running it again for an existing user adds the teams and applies the "
        "flags given (--no-approver, --no-operator take them away)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--team", action="append", required=True, metavar="TEAM",
                            help="a team to be in (repeat for several)")
        parser.add_argument("--approver", action="store_true", default=None,
                            help="may approve other people's requests")
        parser.add_argument("--no-approver", dest="approver", action="store_false")
        parser.add_argument("--operator", action="store_true", default=None,
                            help="may use the admin (staff, with its KRP permissions)")
        parser.add_argument("--no-operator", dest="operator", action="store_false")
        parser.add_argument("--password", action="store_true",
                            help="set a password (for the admin and the browsable API)")
        parser.add_argument("--token", action="store_true", help="print the API token")

    def run(self, options: dict[str, Any]) -> None:
        username = options["username"].strip()
        teams = [team.strip() for team in options["team"]]
        model = get_user_model()
        try:
            model.username_validator(username)
            if not 1 <= len(username) <= 150:
                raise ValidationError("1 to 150 characters")
        except ValidationError as exc:
            raise CommandError(f"username: {options['username']!r} is not valid "
                               f"({' '.join(exc.messages)})") from None
        if not all(teams) or any("\x00" in team or len(team) > 150 for team in teams):
            raise CommandError("--team: a team's name is 1 to 150 characters")
        password = self.ask_password(username) if options["password"] else None
        with transaction.atomic():
            user, created = model.objects.get_or_create(username=username)
            if created and password is None:
                user.set_unusable_password()
            if password is not None:
                user.set_password(password)
            if options["operator"] is not None:
                user.is_staff = options["operator"]
            user.save()
            user.groups.add(*(Group.objects.get_or_create(name=team)[0] for team in teams))
            self.grant(user, options["approver"], _permissions(("provisioning",
                                                                "approve_resourcerequest")))
            self.grant(user, options["operator"], _permissions(*OPERATOR_PERMISSIONS))
            token = Token.objects.get_or_create(user=user)[0].key if options["token"] else None
        user = model.objects.get(pk=user.pk)  # permissions are cached per instance
        report = {
            "username": user.username,
            "created": created,
            "teams": sorted(user.groups.values_list("name", flat=True)),
            "approver": user.has_perm(APPROVE_PERMISSION),
            "operator": user.is_staff,
            "password": user.has_usable_password(),
        }
        if token is not None:
            report["token"] = token
        if options["json"]:
            self.out_json(report)
            return
        self.out(f"user {user.username!r} {'created' if created else 'updated'}: "
                 f"teams {', '.join(report['teams'])}; "
                 f"approver {'yes' if report['approver'] else 'no'}; "
                 f"operator {'yes' if report['operator'] else 'no'}; "
                 f"password {'set' if report['password'] else 'none'}")
        if token is not None:
            self.out(f"API token: {token}")

    @staticmethod
    def grant(user, wanted: bool | None, permissions: list[Permission]) -> None:
        if wanted is True:
            user.user_permissions.add(*permissions)
        elif wanted is False:
            user.user_permissions.remove(*permissions)

    def ask_password(self, username: str) -> str:
        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {username}: ")
            if getpass.getpass("again: ") != password:
                raise CommandError("--password: the two passwords differ")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("--password: the password is empty")
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError(f"--password: {' '.join(exc.messages)}") from None
        return password
