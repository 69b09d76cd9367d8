"""What every resource type module provides, and the context its provisioner works in.

A resource type is one module: a strict spec schema (a pydantic model) and a provisioner
with create / describe / update / delete. Each of the four is idempotent: a repeat after a
crash finds what the first attempt made and carries on, and deleting what is already gone
succeeds. Provisioners call boto3 through `ctx.client(service)` only, raise botocore's
errors as they come (the caller classifies them) and KrpError subclasses for their own
refusals. They never touch the database.

A type also declares what the rest of KRP must know of it, so that adding one touches only
its module and a line of the registry: how its ARNs read (physical_name_in), how reconcile
lists it (listed_by_tag, or list_managed), and which AWS error codes mean "absent"
(absent_codes) or "not yet" (transient_codes).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from pydantic import ValidationError

from containers.settings import EnvironmentSettings, KrpSettings
from provisioning.errors import Conflict, InvalidRequest, TransientCloudError
from provisioning.fencing import FencedClient
from provisioning.resources.spec import (  # noqa: F401 (the types import them from here)
    NAME_PATTERN,
    NAME_RULE,
    SpecModel,
    as_json,
    pattern_rule,
    spec_path,
    spec_problem,
)

MANAGED_BY = "krp:managed-by"
REQUEST_ID = "krp:request-id"
ENVIRONMENT = "krp:environment"
TEAM = "krp:team"
KRP_TAG_PREFIX = "krp:"
# An existing resource KRP cannot take over as it stands (see ResourceType.spec_from).
NOT_IMPORTABLE = "not_importable"

@dataclass(frozen=True)
class Observed:
    """What the cloud holds for one resource, as a provisioner's describe() sees it.

    `settings` is the live configuration in the spec's own shape (the keys a spec sets),
    so the inventory can compare it with the spec it applied.
    """

    physical_id: str
    arn: str
    tags: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)
    extra_outputs: dict[str, Any] = field(default_factory=dict)
    # Live configuration no spec can state and that `settings` therefore leaves out, by
    # the spec setting it touches (-> why): an update would undo it, or the spec would
    # hide it. An import refuses such a resource rather than let KRP "fix" it away.
    unexpressed: dict[str, str] = field(default_factory=dict)

    def outputs(self) -> dict[str, Any]:
        return {"arn": self.arn, "physical_id": self.physical_id, **self.extra_outputs}


@dataclass(frozen=True)
class ProvisionContext:
    """One request's target: the environment, the physical name, the tags, the clients."""

    environment: EnvironmentSettings
    physical_name: str
    # The request that created the resource: its krp:request-id tag, the same for every
    # later update or delete of it.
    creating_request_id: str
    tags: dict[str, str]
    clients: Any  # provisioning.cloud.CloudClients
    # True when an earlier attempt of this request recorded the physical name and may have
    # created the resource without tagging it yet (a crash between the two calls).
    earlier_attempt: bool = False
    # True when KRP never issued a create under this physical name: no attempt of this
    # request nor of any other went out for it. A create may then skip its lookup before
    # creating (and its describe after), where the create call itself refuses or shows an
    # existing resource of the name (see ResourceType.create). False where unsure.
    first_use: bool = False
    # ARNs of the other KRP-managed resources this spec refers to, by (type, name), looked
    # up in the inventory by the caller (see ResourceType.references).
    references: dict[tuple[str, str], str] = field(default_factory=dict)
    # A run's fence (services.lease.Fence): called with the operation's name before every
    # mutating call its clients send. None for reconcile, which holds no lease.
    fence: Callable[[str], None] | None = None

    @classmethod
    def build(
        cls,
        *,
        settings: KrpSettings,
        clients: Any,
        environment: str,
        physical_name: str,
        creating_request_id: str,
        team: str,
        user_tags: Mapping[str, str],
        earlier_attempt: bool = False,
        first_use: bool = False,
        references: dict[tuple[str, str], str] | None = None,
        fence: Callable[[str], None] | None = None,
    ) -> ProvisionContext:
        """The context for one resource of `environment`, with the tags KRP puts on it.

        KRP's own tags come last, so they win over a user tag of the same key: they are how
        KRP recognises what it made and who made it.
        """
        return cls(
            environment=settings.environment(environment),
            physical_name=physical_name,
            creating_request_id=creating_request_id,
            tags={
                **user_tags,
                MANAGED_BY: "krp",
                REQUEST_ID: creating_request_id,
                ENVIRONMENT: environment,
                TEAM: team,
            },
            clients=clients,
            earlier_attempt=earlier_attempt,
            first_use=first_use and not earlier_attempt,
            references={} if references is None else references,
            fence=fence,
        )

    def client(self, service: str) -> Any:
        """The environment's client for `service`; fenced when the context has a fence."""
        client = self.clients.client(self.environment.name, service)
        return client if self.fence is None else FencedClient(client, self.fence)

    @property
    def region(self) -> str:
        return self.environment.region

    @property
    def account_id(self) -> str:
        return self.environment.account_id

    def claim(self, existing_tags: dict[str, str], what: str) -> None:
        """Adopt an existing resource only if this request made it; refuse anything else."""
        owner = existing_tags.get(REQUEST_ID)
        if owner == self.creating_request_id:
            return
        if owner is None and not any(k.startswith(KRP_TAG_PREFIX) for k in existing_tags):
            if self.earlier_attempt:
                return  # our own earlier attempt, interrupted before it could tag
            raise Conflict(
                f"{what} {self.physical_name} already exists in account {self.account_id} "
                "and is not managed by KRP; choose another name or import it by hand"
            )
        raise Conflict(
            f"{what} {self.physical_name} already exists in account {self.account_id} "
            f"and belongs to KRP request {owner}; update that resource instead"
        )

    def claim_for_import(self, existing_tags: dict[str, str], what: str) -> None:
        """An import takes over what carries no KRP tag, or this environment's KRP tags (an
        orphan of this environment, or this request's own earlier attempt); never what KRP
        tags as another environment's, nor what carries KRP tags it does not recognise."""
        krp_tags = {key: value for key, value in existing_tags.items()
                    if key.startswith(KRP_TAG_PREFIX)}
        if not krp_tags:
            return
        environment = krp_tags.get(ENVIRONMENT)
        if environment is not None and environment != self.environment.name:
            raise Conflict(
                f"{what} {self.physical_name} is KRP's in environment {environment!r} "
                f"(tag {ENVIRONMENT}); import it there, not in {self.environment.name!r}",
                "claimed_elsewhere")
        if environment is None or krp_tags.get(MANAGED_BY) != "krp":
            raise Conflict(
                f"{what} {self.physical_name} carries KRP tags of another KRP "
                f"({', '.join(sorted(krp_tags))}); it is not this KRP's to import",
                "claimed_elsewhere")


class ResourceType(ABC):
    """One kind of AWS resource: its spec schema and its provisioner."""

    name: ClassVar[str]
    title: ClassVar[str]
    spec_model: ClassVar[type[SpecModel]]
    max_name_length: ClassVar[int] = 40
    # The service's own limit on the physical name, and how the service is called in
    # the message that says it was exceeded.
    max_physical_length: ClassVar[int | None] = None
    service_label: ClassVar[str] = ""
    # What limits the name in AWS, in words, for a type whose limit max_physical_length
    # does not say (the API's schema shows it with the name's rule).
    physical_name_limit: ClassVar[str] = ""
    # A working request of this type (the API's schema shows it): a name, a spec and what
    # it needs to be accepted besides.
    example_name: ClassVar[str]
    example_spec: ClassVar[dict[str, Any]]
    example_note: ClassVar[str] = ""
    # Its ARNs read arn:<partition>:<arn_service>:<region>:<account>:<arn_prefix><name>.
    arn_service: ClassVar[str]
    arn_prefix: ClassVar[str] = ""
    # What a create records besides `arn` and `physical_id` (name -> what it is). A stack
    # member may refer to any of these, to those two and to `name` and `physical_name`
    # ({"ref": "member.output"}); the API lists them with each type's spec schema.
    extra_outputs: ClassVar[dict[str, str]] = {}
    # Whether its ARNs name a region and an account (S3's name neither; IAM's no region).
    arn_has_region: ClassVar[bool] = True
    arn_has_account: ClassVar[bool] = True
    # Reconcile finds most types through one listing of the Resource Groups Tagging API; a
    # type that API does not return sets this False and lists itself (list_managed).
    listed_by_tag: ClassVar[bool] = True
    # The AWS error codes by which the service says "nothing of that name": describe()
    # answers None for them, and a delete that meets them has nothing left to do.
    absent_codes: ClassVar[frozenset[str]] = frozenset()
    # Codes by which the service refuses a call only for now (say, while it settles a
    # change): the request is retried. Throttling and AWS's own faults count for every type.
    transient_codes: ClassVar[frozenset[str]] = frozenset()

    def parse_spec(self, raw: Any) -> SpecModel:
        """Validate a spec document; InvalidRequest names each offending field."""
        if not isinstance(raw, dict):
            raise InvalidRequest.about("spec", "must be a JSON object", "invalid_spec")
        try:
            return self.spec_model.model_validate(raw)
        except ValidationError as exc:
            problems: dict[str, list[str]] = {}
            for error in exc.errors():
                problems.setdefault(spec_path(error["loc"]), []).append(spec_problem(error))
            raise InvalidRequest.about_each(problems, "invalid_spec") from None

    def json_schema(self) -> dict[str, Any]:
        return self.spec_model.model_json_schema()

    def validate_name(self, name: Any) -> str:
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise InvalidRequest.about(
                "name", f"{name!r} is not valid for {self.name}: {NAME_RULE}",
                "invalid_name",
            )
        if not 3 <= len(name) <= self.max_name_length:
            raise InvalidRequest.about(
                "name", f"{name!r} is not valid for {self.name}: it must be 3 to "
                f"{self.max_name_length} characters long",
                "invalid_name",
            )
        return name

    def name_rule(self) -> str:
        """The rule of a request's name for this type, in words."""
        limit = self.physical_name_limit or (
            f"the name in AWS, <prefix>-<environment>-<name>, must fit {self.service_label}'s "
            f"{self.max_physical_length} characters" if self.max_physical_length else "")
        return (f"3 to {self.max_name_length} characters: {NAME_RULE}"
                + (f"; {limit}" if limit else ""))

    def physical_name(self, *, prefix: str, environment: str, name: str, spec: SpecModel) -> str:
        """The name in AWS: deterministic from prefix, environment and name."""
        return self.check_length(name, f"{prefix}-{environment}-{name}")

    def check_length(self, name: str, physical: str) -> str:
        """Refuse a physical name over the service's limit, naming the request's `name`."""
        limit = self.max_physical_length
        if limit is not None and len(physical) > limit:
            raise InvalidRequest.about(
                "name", f"{name!r} is too long for an {self.title}: {physical!r} has "
                f"{len(physical)} characters, {self.service_label} allows {limit}",
                "invalid_name",
            )
        return physical

    # The resource types a spec of this type may refer to (see `references`): a resource of
    # one of them cannot be deleted or forgotten while a spec of this type refers to it.
    refers_to_types: ClassVar[frozenset[str]] = frozenset()

    def references(self, spec: SpecModel) -> list[tuple[str, str]]:
        """Other KRP resources (type, name) in the same environment that `spec` needs."""
        return []

    def may_refer_to(self, type_name: str) -> bool:
        return type_name in self.refers_to_types

    def delete_notes(self, ctx: ProvisionContext, current: Observed) -> list[str]:
        """What else a delete of `current` takes with it, for its plan ("the 2
        subscriptions that point at it"); nothing by default."""
        return []

    def expected_settings(self, spec: SpecModel) -> dict[str, Any]:
        """The live settings (Observed.settings) that applying `spec` should produce."""
        return spec.model_dump()

    # A suffix the service requires on some physical names (SQS's and SNS's .fifo), which
    # physical_name() adds and a KRP name therefore leaves out.
    physical_suffix: ClassVar[str] = ""

    def spec_from(self, observed: Observed) -> dict[str, Any]:
        """The spec of an import: what `observed` (this type's describe()) holds, as a
        request's spec would say it, such that expected_settings of it equal
        observed.settings, so neither reconcile nor a plan of it finds a change after the
        import. InvalidRequest (not_importable) names each live setting no spec can state."""
        if observed.unexpressed:
            raise InvalidRequest.about_each(
                {f"spec.{name}": [why] for name, why in observed.unexpressed.items()},
                NOT_IMPORTABLE)
        spec = self.spec_document(observed.settings)
        try:
            parsed = self.parse_spec(spec)
        except InvalidRequest as exc:
            raise InvalidRequest.about_each(
                {path: [f"the live value cannot be stated in a spec: {problem}"
                        for problem in problems] for path, problems in exc.fields.items()},
                NOT_IMPORTABLE) from None
        expected = self.expected_settings(parsed)
        differing = sorted(key for key in {*expected, *observed.settings}
                           if expected.get(key) != observed.settings.get(key))
        if differing:
            raise InvalidRequest.about_each(
                {f"spec.{key}": [f"no spec states its live value "
                                 f"{json.dumps(observed.settings.get(key), default=str)}"]
                 for key in differing},
                NOT_IMPORTABLE)
        return spec

    def spec_document(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Live settings (describe's, already free of anything `unexpressed` names) as a
        spec document: unset ones left out, as a request would leave them. A type whose
        settings hold what no spec field takes refuses it here (not_importable)."""
        return {key: value for key, value in settings.items() if value is not None}

    def import_name(self, physical_name_or_arn: str, *, prefix: str, environment: str) -> str:
        """The physical name of a resource to import, given as its name or its ARN.

        `prefix` and `environment` are not needed by any type yet: an imported resource
        keeps its own name, whatever its form."""
        given = physical_name_or_arn.strip()
        physical = self.physical_name_in(given) if given.startswith("arn:") else given
        if not physical or "/" in physical or ":" in physical:
            raise InvalidRequest.about(
                "physical_name", f"{physical_name_or_arn!r} is neither the name nor the ARN "
                f"of an {self.title}", "invalid_name")
        return physical

    def krp_name_for(self, physical_name: str, *, prefix: str, environment: str) -> str:
        """The KRP name an imported resource gets: its physical name without KRP's
        `<prefix>-<environment>-` and the service's suffix (see physical_suffix), lower-cased,
        each character a KRP name refuses turned into a dash and none left at either end.
        InvalidRequest (invalid_name) when even that is no KRP name (too long, starting with a
        digit)."""
        stem = physical_name.removesuffix(self.physical_suffix)
        stem = stem.removeprefix(f"{prefix}-{environment}-")
        name = re.sub(r"[^a-z0-9-]", "-", stem.lower()).strip("-")
        try:
            return self.validate_name(name)
        except InvalidRequest as exc:
            raise InvalidRequest.about(
                "name", f"{physical_name!r} gives no KRP name: {exc.fields['name'][0]}",
                "invalid_name") from None

    def check_update(self, current: SpecModel, desired: SpecModel) -> None:
        """Refuse an update that would change a field fixed at creation."""
        changed = sorted(
            name
            for name in desired.immutable_fields
            if getattr(current, name) != getattr(desired, name)
        )
        if changed:
            raise InvalidRequest.about_each(
                {
                    f"spec.{name}": ["cannot change after creation (is "
                                     f"{as_json(current, name)}, asked "
                                     f"{as_json(desired, name)})"]
                    for name in changed
                },
                "immutable_field",
            )

    def output_names(self) -> dict[str, str]:
        """Every output a stack member of this type offers to the others, described."""
        return {
            "name": "its KRP name",
            "physical_name": "its name in AWS",
            "arn": "its ARN",
            "physical_id": "its id in AWS",
            **self.extra_outputs,
        }

    def arn_of(self, environment: EnvironmentSettings, physical_name: str) -> str:
        """The ARN a resource of this type and physical name has in `environment`."""
        region = environment.region if self.arn_has_region else ""
        account = environment.account_id if self.arn_has_account else ""
        return (f"arn:aws:{self.arn_service}:{region}:{account}:{self.arn_prefix}"
                f"{physical_name}")

    def physical_name_in(self, arn: str) -> str | None:
        """The physical name `arn` gives, if it is the ARN of one of these; None if not."""
        parts = arn.split(":", 5)
        if len(parts) < 6 or parts[2] != self.arn_service:
            return None
        if not parts[5].startswith(self.arn_prefix):
            return None
        return parts[5].removeprefix(self.arn_prefix)

    def list_all(self, clients: Any, env: EnvironmentSettings) -> dict[str, dict[str, str]]:
        """Physical name -> tags of every resource of this type in `env`'s account
        and region, KRP's or not: what a bulk import chooses from (one listing, and a tags
        call each)."""
        raise NotImplementedError(f"{self.name} cannot list what the account holds")

    def list_managed(self, clients: Any, environment: str,
                     known: Collection[str]) -> dict[str, dict[str, str] | None]:
        """ARN -> tags of each of these KRP manages in `environment`, for a type that
        `list_by_tag` does not find (listed_by_tag False). A listing that does not give
        tags maps the ARNs in `known` (the inventory's, of any environment) to None rather
        than read their tags one call each; it reads them only for the others, to tell
        KRP's orphans from what is not KRP's or not this environment's."""
        raise NotImplementedError(f"{self.name} is listed by tag: see list_by_tag")

    @classmethod
    def absent_as_none(cls, call: Callable[..., Any], /, **kwargs: Any) -> Any:
        """call(**kwargs)'s answer, or None when AWS answers that its target is absent."""
        return answer_or_none(cls.absent_codes, call, **kwargs)

    @classmethod
    def ignore_absent(cls, call: Callable[..., Any], /, **kwargs: Any) -> None:
        """Make a removing call; its target being already gone is what it meant to achieve."""
        answer_or_none(cls.absent_codes, call, **kwargs)

    @staticmethod
    def make_tags_exactly(
        current: Mapping[str, str],
        wanted: Mapping[str, str],
        *,
        tag: Callable[[dict[str, str]], Any],
        untag: Callable[[list[str]], Any],
        tag_first: bool = False,
        send_all: bool = False,
        always_tag: bool = False,
    ) -> None:
        """Make a resource's tags exactly `wanted`, given its `current` ones.

        `untag(keys)` drops the keys `wanted` lacks (sorted), when there are any. `tag(tags)`
        adds and changes the rest: it gets the tags whose value differs, or with `send_all`
        every wanted tag, and is called only when one differs, unless `always_tag` (which
        sends every one). `untag` comes first unless `tag_first`. The options keep each
        service's sequence of calls as it was when each type did this itself.
        """
        changed = {key: value for key, value in wanted.items() if current.get(key) != value}
        dropped = sorted(set(current) - set(wanted))

        def tag_step() -> None:
            if always_tag or changed:
                tag(dict(wanted) if send_all or always_tag else changed)

        def untag_step() -> None:
            if dropped:
                untag(dropped)

        for step in (tag_step, untag_step) if tag_first else (untag_step, tag_step):
            step()

    def described(self, ctx: ProvisionContext) -> Observed:
        """describe() of a resource that was just configured, so certainly there."""
        observed = self.describe(ctx)
        if observed is None:
            raise TransientCloudError(
                f"{self.title} {ctx.physical_name} was configured but is not visible yet",
                "NotVisibleYet",
            )
        return observed

    def owned(self, ctx: ProvisionContext) -> Observed | None:
        """What stands under the name, if anything, after checking it is this request's."""
        existing = self.describe(ctx)
        if existing is not None:
            ctx.claim(existing.tags, self.title)
        return existing

    @abstractmethod
    def create(self, ctx: ProvisionContext, spec: SpecModel) -> Observed:
        """Make the resource, or adopt what an earlier attempt of this request made.

        With ctx.first_use, a type whose create call refuses a name in use may skip the
        lookup before it, and may answer what it set instead of describing it after.
        """

    @abstractmethod
    def describe(self, ctx: ProvisionContext) -> Observed | None:
        """What the cloud holds under ctx.physical_name, or None if nothing."""

    @abstractmethod
    def update(self, ctx: ProvisionContext, spec: SpecModel) -> Observed:
        """Apply the spec's mutable settings and the tags to the existing resource."""

    @abstractmethod
    def delete(self, ctx: ProvisionContext) -> None:
        """Remove the resource; succeed if it is already gone."""


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """Tags in the Key/Value list shape most AWS APIs take."""
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or ()}


def managed_in(tags: Mapping[str, str], environment: str) -> bool:
    """Whether tags mark a resource KRP manages for `environment`.

    Two environments may share an account (and IAM is global): only this one's count.
    """
    return tags.get(MANAGED_BY) == "krp" and tags.get(ENVIRONMENT) == environment


def list_by_tag(clients: Any, environment: str) -> dict[str, dict[str, str]]:
    """ARN -> tags of everything the Resource Groups Tagging API lists as KRP's in
    `environment`, of every type it returns (and of types KRP does not know)."""
    tagging = clients.client(environment, "resourcegroupstaggingapi")
    pages = tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": MANAGED_BY, "Values": ["krp"]},
                    {"Key": ENVIRONMENT, "Values": [environment]}],
        # The most each page may hold. AWS recommends ResourcesPerPage alone; TagsPerPage at
        # its maximum only lifts the tag cap (moto applies 100 tags a page when it is
        # absent: ~16 of KRP's resources a page instead of 100).
        ResourcesPerPage=100, TagsPerPage=500,
    )
    return {
        mapping["ResourceARN"]: tag_dict(mapping.get("Tags"))
        for page in pages
        for mapping in page["ResourceTagMappingList"]
    }


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def answer_or_none(codes: Collection[str], call: Callable[..., Any], /, **kwargs: Any) -> Any:
    """call(**kwargs)'s answer, or None when AWS refuses it with one of `codes`."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if error_code(exc) in codes:
            return None
        raise
