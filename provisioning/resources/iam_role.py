"""iam_role: an IAM role a named AWS service may assume, with managed and inline policies.

Roles live under the path /krp/: the Tagging API never returns IAM roles, so KRP finds its
roles with list_roles(PathPrefix="/krp/"). IAM is global: the ARN names the account only.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Collection
from typing import Annotated, Any, ClassVar

from botocore.exceptions import ClientError
from pydantic import Field, StringConstraints, field_validator

from containers.settings import EnvironmentSettings
from provisioning.errors import InvalidRequest
from provisioning.resources.base import (
    NOT_IMPORTABLE,
    Observed,
    ProvisionContext,
    ResourceType,
    SpecModel,
    error_code,
    managed_in,
    pattern_rule,
    tag_dict,
    tag_list,
)

ROLE_PATH = "/krp/"
INLINE_POLICY_NAME = "krp-inline"
MAX_ROLE_NAME = 64
MAX_INLINE_POLICY_CHARS = 10240  # IAM's quota for a role's inline policies
POLICY_VERSION = "2012-10-17"
STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
WILDCARD_ACTIONS = {"*", "*:*"}

POLICY_ARN_PATTERN = pattern_rule(
    r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/.+$",
    "must be a managed policy's ARN: arn:aws:iam::aws:policy/NAME for an AWS managed "
    "policy, or arn:aws:iam::ACCOUNT:policy/NAME (a 12-digit account)",
)
TRUSTED_SERVICE_PATTERN = pattern_rule(
    r"^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$",
    "must be an AWS service principal: lowercase, ending in .amazonaws.com (or "
    ".amazonaws.com.cn), e.g. lambda.amazonaws.com",
)
# IAM's own character set for role descriptions, refused here rather than by AWS.
DESCRIPTION_PATTERN = pattern_rule(
    r"^[\t\n\r\u0020-\u007e\u00a1-\u00ff]*$",
    "may hold only printable Latin-1 characters, tabs and line breaks (IAM's rule for "
    "role descriptions)",
)
PolicyArn = Annotated[str, StringConstraints(pattern=POLICY_ARN_PATTERN)]


class IamRoleSpec(SpecModel):
    trusted_service: str = Field(
        pattern=TRUSTED_SERVICE_PATTERN,
        description="the service principal that may assume the role, e.g. lambda.amazonaws.com",
    )
    managed_policy_arns: list[PolicyArn] = Field(
        default_factory=list, max_length=10, description="managed policies to attach (at most 10)"
    )
    inline_policy: dict[str, Any] | None = Field(
        default=None,
        description='an IAM policy document {"Version": "2012-10-17", "Statement": [...]}',
    )
    description: str = Field(
        default="", max_length=1000, pattern=DESCRIPTION_PATTERN,
        description="what the role is for",
    )
    max_session_duration_seconds: int = Field(
        default=3600, ge=3600, le=43200, description="longest session an assumer may get"
    )

    @field_validator("managed_policy_arns")
    @classmethod
    def _unique(cls, arns: list[str]) -> list[str]:
        duplicates = sorted({arn for arn in arns if arns.count(arn) > 1})
        if duplicates:
            raise ValueError(f"each policy may be listed once; repeated: {', '.join(duplicates)}")
        return arns

    @field_validator("inline_policy")
    @classmethod
    def _policy_document(cls, document: dict[str, Any] | None) -> dict[str, Any] | None:
        if document is None:
            return None
        if document.get("Version") != POLICY_VERSION:
            raise ValueError(f'"Version" must be "{POLICY_VERSION}"')
        if unknown := sorted(set(document) - {"Version", "Id", "Statement"}):
            raise ValueError(f"unknown keys {', '.join(unknown)}; a policy has Version, Id "
                             "and Statement")
        statements = document.get("Statement")
        if not isinstance(statements, list) or not statements:
            raise ValueError('"Statement" must be a non-empty list of statements')
        for index, statement in enumerate(statements):
            _check_statement(index, statement)
        if len(json.dumps(document, separators=(",", ":"))) > MAX_INLINE_POLICY_CHARS:
            raise ValueError(f"longer than IAM's {MAX_INLINE_POLICY_CHARS} characters")
        return document


def _check_statement(index: int, statement: Any) -> None:
    """Refuse a statement IAM would refuse, and the grants KRP will not make at all."""
    where = f"Statement[{index}]"
    if not isinstance(statement, dict):
        raise ValueError(f"{where} must be an object")
    if unknown := sorted(set(statement) - STATEMENT_KEYS):
        raise ValueError(f"{where} has unknown keys {', '.join(unknown)}; allowed: "
                         f"{', '.join(sorted(STATEMENT_KEYS))}")
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise ValueError(f'{where}.Effect must be "Allow" or "Deny"')
    if effect == "Allow":
        # An Allow of "everything except ..." cannot be checked for what it grants.
        if broad := [key for key in ("NotAction", "NotResource") if key in statement]:
            raise ValueError(f"{where}: {' and '.join(broad)} in an Allow statement is too broad; "
                             "list the actions and resources it grants instead")
    for key in ("Action", "Resource"):
        present = [k for k in (key, f"Not{key}") if k in statement]
        if len(present) != 1:
            raise ValueError(f"{where} needs exactly one of {key} and Not{key}")
        values = statement[present[0]]
        items = values if isinstance(values, list) else [values]
        if not items or not all(isinstance(item, str) and item for item in items):
            raise ValueError(f"{where}.{present[0]} must be a string or a list of strings")
    if "Condition" in statement and not isinstance(statement["Condition"], dict):
        raise ValueError(f"{where}.Condition must be an object")
    if effect == "Allow" and _any_of(statement["Action"], WILDCARD_ACTIONS) and _any_of(
        statement["Resource"], {"*"}
    ):
        # moto accepts this; an administrator role is not self-service.
        raise ValueError(f'{where} allows every action ("*") on every resource ("*"); '
                         "name the actions and resources the role needs")


def _any_of(values: str | list[str], wanted: set[str]) -> bool:
    return bool(set(values if isinstance(values, list) else [values]) & wanted)


class IamRole(ResourceType):
    name = "iam_role"
    title = "IAM role"
    spec_model = IamRoleSpec
    max_physical_length = MAX_ROLE_NAME
    service_label = "IAM"
    example_name = "report-builder"
    example_spec: ClassVar[dict[str, Any]] = {
        "trusted_service": "lambda.amazonaws.com",
        "managed_policy_arns": [
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
        "inline_policy": {"Version": POLICY_VERSION, "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": "arn:aws:s3:::reports-archive/*"}]},
        "description": "builds the monthly reports",
    }
    arn_service = "iam"
    arn_has_region = False
    extra_outputs = {"role_name": "the role's name", "role_id": "the role's unique id"}
    arn_prefix = "role/"
    listed_by_tag = False  # the Tagging API never returns IAM roles
    absent_codes = frozenset({"NoSuchEntity"})

    def expected_settings(self, spec: IamRoleSpec) -> dict[str, Any]:
        settings = spec.model_dump()
        # IAM keeps attachments as a set: describe() reports them sorted.
        settings["managed_policy_arns"] = sorted(settings["managed_policy_arns"])
        return settings

    def arn_of(self, environment: EnvironmentSettings, physical_name: str) -> str:
        return f"arn:aws:iam::{environment.account_id}:role{ROLE_PATH}{physical_name}"

    def physical_name_in(self, arn: str) -> str | None:
        path_and_name = super().physical_name_in(arn)
        # The ARN carries the role's path (role/krp/<name>); the name is its last part.
        return path_and_name.rsplit("/", 1)[-1] if path_and_name is not None else None

    def list_all(self, clients: Any, env: EnvironmentSettings) -> dict[str, dict[str, str]]:
        """Every role but AWS's service-linked ones and the one KRP itself assumes there."""
        iam, own = clients.client(env.name, "iam"), env.role_arn
        return {
            role["RoleName"]: tag_dict(iam.list_role_tags(RoleName=role["RoleName"]).get("Tags"))
            for page in iam.get_paginator("list_roles").paginate()
            for role in page["Roles"]
            if role["Arn"] != own and not role["Path"].startswith("/aws-service-role/")
        }

    def list_managed(self, clients: Any, environment: str,
                     known: Collection[str]) -> dict[str, dict[str, str] | None]:
        """KRP's roles by their path, 1,000 a call. ListRoles never gives tags (in AWS; moto
        differs), so a role the inventory knows maps to None: reconcile compares its tags
        in the deep check (GetRole), not here; only an unknown role's are read
        (ListRoleTags, one call each), to tell this environment's orphans from the rest."""
        iam = clients.client(environment, "iam")
        listed: dict[str, dict[str, str] | None] = {}
        pages = iam.get_paginator("list_roles").paginate(
            PathPrefix=ROLE_PATH, PaginationConfig={"PageSize": 1000})
        for page in pages:
            for role in page["Roles"]:
                if role["Arn"] in known:
                    listed[role["Arn"]] = None
                    continue
                tags = tag_dict(iam.list_role_tags(RoleName=role["RoleName"]).get("Tags"))
                if managed_in(tags, environment):
                    listed[role["Arn"]] = tags
        return listed

    def create(self, ctx: ProvisionContext, spec: IamRoleSpec) -> Observed:
        # Refuse a policy that does not exist before making anything (NoSuchEntity): a role
        # left behind by a failed create is in no inventory, yet blocks its name for good.
        for arn in spec.managed_policy_arns:
            ctx.client("iam").get_policy(PolicyArn=arn)
        # CreateRole refuses a name in use (EntityAlreadyExists, handled below), so a name
        # KRP never used needs no look first.
        if ctx.first_use or self.owned(ctx) is None:
            try:
                # Tagged in the same call, so a crash right after leaves a role we can claim.
                ctx.client("iam").create_role(
                    RoleName=ctx.physical_name,
                    Path=ROLE_PATH,
                    AssumeRolePolicyDocument=json.dumps(_trust_policy(spec.trusted_service)),
                    Description=spec.description,
                    MaxSessionDuration=spec.max_session_duration_seconds,
                    Tags=tag_list(ctx.tags),
                )
            except ClientError as exc:
                if error_code(exc) != "EntityAlreadyExists":
                    raise
                # Another attempt made it since our look, or it stood there already (a name
                # KRP never used is not looked up first): ours only if tagged so.
                raced = self.describe(ctx)
                ctx.claim(raced.tags if raced else {}, "IAM role")
        return self.update(ctx, spec)

    def describe(self, ctx: ProvisionContext) -> Observed | None:
        iam, role_name = ctx.client("iam"), ctx.physical_name
        answer = self.absent_as_none(iam.get_role, RoleName=role_name)
        if answer is None:
            return None
        role = answer["Role"]
        trust = role.get("AssumeRolePolicyDocument")
        return Observed(
            physical_id=role_name,
            arn=role["Arn"],
            tags=tag_dict(role.get("Tags")),
            settings={
                "trusted_service": _trusted_service(trust),
                "managed_policy_arns": sorted(self._attached(iam, role_name)),
                "inline_policy": self._inline_policy(iam, role_name),
                # AWS leaves Description out of GetRole when it is empty.
                "description": role.get("Description", ""),
                "max_session_duration_seconds": role.get("MaxSessionDuration"),
            },
            extra_outputs={"role_name": role_name, "role_id": role["RoleId"]},
            unexpressed=self._unexpressed(iam, role_name, trust),
        )

    def spec_document(self, settings: dict[str, Any]) -> dict[str, Any]:
        service = settings["trusted_service"]
        if not isinstance(service, str):
            raise InvalidRequest.about(
                "spec.trusted_service", "the trust policy lets "
                f"{'no service' if service is None else ' and '.join(service)} assume the "
                "role; a spec names exactly one service", NOT_IMPORTABLE)
        return super().spec_document(settings)

    @classmethod
    def _unexpressed(cls, iam: Any, role_name: str, trust: Any) -> dict[str, str]:
        """What an update would undo (a trust policy it would rewrite) or the spec would
        hide (inline policies under other names, which stay and keep granting)."""
        unexpressed: dict[str, str] = {}
        service = _trusted_service(trust)
        if isinstance(service, str) and _statements(_policy_dict(trust)) != _statements(
            _trust_policy(service)
        ):
            unexpressed["trusted_service"] = (
                f"the trust policy says more than that {service} may assume the role "
                "(other principals, actions or conditions); KRP would replace it")
        others = sorted(
            name
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name)
            for name in page["PolicyNames"] if name != INLINE_POLICY_NAME
        )
        if others:
            unexpressed["inline_policy"] = (
                f"inline policies {', '.join(others)}: a spec states one inline policy, "
                f"which KRP keeps under the name {INLINE_POLICY_NAME}; rename it to that or "
                "make it a managed policy")
        return unexpressed

    def update(self, ctx: ProvisionContext, spec: IamRoleSpec) -> Observed:
        iam, role_name = ctx.client("iam"), ctx.physical_name
        iam.update_assume_role_policy(
            RoleName=role_name, PolicyDocument=json.dumps(_trust_policy(spec.trusted_service))
        )
        iam.update_role(
            RoleName=role_name,
            Description=spec.description,
            MaxSessionDuration=spec.max_session_duration_seconds,
        )
        attached = self._attached(iam, role_name)
        for arn in spec.managed_policy_arns:
            if arn not in attached:
                # A policy that does not exist answers NoSuchEntity: let it fail the request.
                iam.attach_role_policy(RoleName=role_name, PolicyArn=arn)
        for arn in attached - set(spec.managed_policy_arns):
            self.ignore_absent(iam.detach_role_policy, RoleName=role_name, PolicyArn=arn)
        if spec.inline_policy is not None:
            iam.put_role_policy(
                RoleName=role_name,
                PolicyName=INLINE_POLICY_NAME,
                PolicyDocument=json.dumps(spec.inline_policy),
            )
        else:
            self.ignore_absent(iam.delete_role_policy, RoleName=role_name,
                               PolicyName=INLINE_POLICY_NAME)
        self.make_tags_exactly(
            tag_dict(iam.get_role(RoleName=role_name)["Role"].get("Tags")), ctx.tags,
            tag=lambda tags: iam.tag_role(RoleName=role_name, Tags=tag_list(tags)),
            untag=lambda keys: iam.untag_role(RoleName=role_name, TagKeys=keys),
            always_tag=True,
        )
        return self.described(ctx)

    def delete(self, ctx: ProvisionContext) -> None:
        if self.owned(ctx) is None:
            return
        iam, role_name = ctx.client("iam"), ctx.physical_name
        # The role going away under us, at any step, is what we wanted.
        self.ignore_absent(self._strip_and_delete, iam=iam, role_name=role_name)

    def _strip_and_delete(self, *, iam: Any, role_name: str) -> None:
        """Delete the role: IAM refuses while it still has policies or instance profiles."""
        for arn in self._attached(iam, role_name):
            self.ignore_absent(iam.detach_role_policy, RoleName=role_name, PolicyArn=arn)
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
            for policy_name in page["PolicyNames"]:
                self.ignore_absent(iam.delete_role_policy, RoleName=role_name,
                                   PolicyName=policy_name)
        profiles = iam.get_paginator("list_instance_profiles_for_role")
        for page in profiles.paginate(RoleName=role_name):
            for profile in page["InstanceProfiles"]:
                self.ignore_absent(iam.remove_role_from_instance_profile, RoleName=role_name,
                                   InstanceProfileName=profile["InstanceProfileName"])
        iam.delete_role(RoleName=role_name)

    @staticmethod
    def _attached(iam: Any, role_name: str) -> set[str]:
        paginator = iam.get_paginator("list_attached_role_policies")
        return {
            policy["PolicyArn"]
            for page in paginator.paginate(RoleName=role_name)
            for policy in page["AttachedPolicies"]
        }

    @classmethod
    def _inline_policy(cls, iam: Any, role_name: str) -> dict[str, Any] | None:
        document = cls.absent_as_none(iam.get_role_policy, RoleName=role_name,
                                      PolicyName=INLINE_POLICY_NAME)
        if document is None:
            return None
        return _policy_dict(document["PolicyDocument"])


def _trust_policy(service: str) -> dict[str, Any]:
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def _policy_dict(document: str | dict[str, Any] | None) -> dict[str, Any]:
    """A policy document as a dict: botocore decodes it, but IAM sends it URL-encoded."""
    if document is None:
        return {}
    if isinstance(document, dict):
        return document
    return json.loads(urllib.parse.unquote(document))


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy's statements as IAM means them: no Sid, a list of one as its one item."""
    statements = document.get("Statement", [])
    return [_plain({key: value for key, value in statement.items() if key != "Sid"})
            for statement in (statements if isinstance(statements, list) else [statements])]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list) and len(value) == 1:
        return _plain(value[0])
    return value


def _trusted_service(document: str | dict[str, Any] | None) -> str | list[str] | None:
    """The service principal(s) the trust policy lets assume the role."""
    statements = _policy_dict(document).get("Statement", [])
    services: list[str] = []
    for statement in statements if isinstance(statements, list) else [statements]:
        principal = statement.get("Principal")
        if statement.get("Effect") != "Allow" or not isinstance(principal, dict):
            continue
        service = principal.get("Service", [])
        services.extend(service if isinstance(service, list) else [service])
    if not services:
        return None
    # More than one means someone changed the trust policy outside KRP: show all of them.
    return services[0] if len(services) == 1 else sorted(services)

