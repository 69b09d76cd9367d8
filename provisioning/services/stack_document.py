"""A stack document: its members, their references to each other, a dependency order.

    {"environment": "alpha", "name": "orders", "rollback": true, "members": {
        "jobs": {"resource_type": "sqs_queue", "spec": {...}},
        "events": {"resource_type": "sns_topic",
                   "spec": {"subscriptions": [{"queue": {"ref": "jobs.name"}}]}}}}

A member's spec may hold `{"ref": "<member>.<output>"}` wherever a string goes; the member
then waits for that one to succeed, and its request records the resolved value. Each
member becomes a resource named `<stack name>-<member key>` unless it gives its own `name`.
Checked at submit: every problem of every member is reported at once, under paths such as
`members.events.spec.subscriptions[0].queue`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from containers.settings import EnvironmentSettings, KrpSettings
from provisioning import selectors
from provisioning.errors import InvalidRequest, Problems
from provisioning.models import RequestAction
from provisioning.resources import REGISTRY
from provisioning.resources.base import NAME_PATTERN, NAME_RULE, ResourceType
from provisioning.services.lifetimes import requested_lifetime
from provisioning.services.submission import (
    checked_tags,
    choose_team,
    has_nul,
    known_environment,
)

REF = "ref"
MAX_MEMBERS = 25
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
KEY_RULE = "1 to 32 lowercase letters, digits and dashes, starting with a letter"
DOCUMENT_FIELDS = ("environment", "name", "members", "rollback", "team", "tags", "ttl",
                   "expires_at")
MEMBER_FIELDS = ("resource_type", "name", "spec", "tags")


@dataclass(frozen=True)
class Reference:
    """`{"ref": "member.output"}` at `path` (spec.subscriptions[0].queue) in a spec."""

    path: str
    member: str
    output: str


@dataclass(frozen=True)
class PlannedMember:
    key: str
    resource_type: str
    name: str
    spec: dict[str, Any]
    tags: dict[str, str]
    depends_on: tuple[str, ...]
    position: int
    physical_name: str  # as it will be in AWS


@dataclass(frozen=True)
class PlannedStack:
    """A document that passed every check, as it will be recorded."""

    environment: EnvironmentSettings
    name: str
    rollback: bool
    team: Group
    members: tuple[PlannedMember, ...]
    # Its lifetime (lifetimes.requested_lifetime's rules, as a create request's).
    ttl: timedelta | None = None
    expires_at: datetime | None = None


def references_in(value: Any, path: str = "spec") -> Iterator[Reference | InvalidRequest]:
    """Each reference in `value`, or the problem with one that is malformed."""
    if isinstance(value, dict):
        if REF in value:
            target = value[REF]
            if len(value) != 1 or not isinstance(target, str) or target.count(".") != 1:
                yield InvalidRequest.about(path, 'a reference is {"ref": "<member>.<output>"} '
                                           "and nothing else", "invalid_reference")
                return
            member, output = target.split(".")
            yield Reference(path=path, member=member, output=output)
            return
        for key, item in value.items():
            yield from references_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from references_in(item, f"{path}[{index}]")


def resolve(value: Any, outputs: Mapping[str, Mapping[str, Any]]) -> Any:
    """`value` with each reference replaced by the output it names (`outputs`: member key
    -> its outputs). A reference to an output the member does not have raises KeyError."""
    if isinstance(value, dict):
        if REF in value and len(value) == 1 and isinstance(value[REF], str):
            member, output = value[REF].split(".", 1)
            resolved = outputs[member][output]
            return resolved
        return {key: resolve(item, outputs) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, outputs) for item in value]
    return value


def member_name(stack_name: str, key: str, given: Any) -> Any:
    return f"{stack_name}-{key}" if given is None else given


def predicted_outputs(kind: ResourceType, *, environment: EnvironmentSettings, name: str,
                      physical_name: str) -> dict[str, str]:
    """What a member's outputs will look like, to check the specs that refer to them before
    anything exists: its names and ARN as they will be, and its physical name for the rest."""
    predicted = {output: physical_name for output in kind.output_names()}
    predicted.update(name=name, physical_name=physical_name,
                     arn=kind.arn_of(environment, physical_name))
    return predicted


def stack_validate(*, document: Any, teams: list[Group], settings: KrpSettings) -> PlannedStack:
    """Check a stack document; InvalidRequest names every problem of every member."""
    if not isinstance(document, dict):
        raise InvalidRequest.about("body", "a stack is a JSON object", "invalid_stack")
    if has_nul(document):
        raise InvalidRequest.about("body", "contains a NUL character (\\u0000), which no "
                                   "field accepts", "invalid_stack")
    problems = Problems()
    for field in sorted(set(document) - set(DOCUMENT_FIELDS)):
        problems.add(InvalidRequest.about(field, "is not a field of a stack"))
    for field in ("environment", "name", "team"):
        if document.get(field) is not None and not isinstance(document[field], str):
            problems.add(InvalidRequest.about(field, "must be a string"))
    env = None if problems.names("environment") else problems.check(
        known_environment, settings=settings, name=document.get("environment"))
    stack_name = None if problems.names("name") else problems.check(
        _stack_name, document.get("name"))
    rollback = document.get("rollback", True)
    if not isinstance(rollback, bool):
        problems.add(InvalidRequest.about("rollback", "must be true or false"))
    team = None if problems.names("team") else problems.check(
        choose_team, teams, document.get("team"))
    stack_tags = problems.check(checked_tags, document.get("tags")) or {}
    lifetime = None if problems.names("environment") else problems.check(
        _lifetime, document, env)
    members = document.get("members")
    if not isinstance(members, dict) or not members:
        problems.add(InvalidRequest.about("members", "must be a JSON object of members by "
                                          "key, at least one", "invalid_stack"))
        members = {}
    elif len(members) > MAX_MEMBERS:
        problems.add(InvalidRequest.about("members", f"at most {MAX_MEMBERS} members"))

    kinds: dict[str, ResourceType] = {}
    names: dict[str, str] = {}
    specs: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, str]] = {}
    references: dict[str, list[Reference]] = {}
    for key, member in members.items():
        where = f"members.{key}"
        if not KEY_PATTERN.match(key):
            problems.add(InvalidRequest.about(where, f"a member's key is {KEY_RULE}"))
            continue
        if not isinstance(member, dict):
            problems.add(InvalidRequest.about(where, "must be a JSON object"))
            continue
        for field in sorted(set(member) - set(MEMBER_FIELDS)):
            problems.add(InvalidRequest.about(f"{where}.{field}", "is not a field of a member"))
        type_name = member.get("resource_type")
        if not isinstance(type_name, str) or type_name not in REGISTRY:
            problems.add(InvalidRequest.about(
                f"{where}.resource_type", f"{type_name!r} is not a resource type (known: "
                f"{', '.join(sorted(REGISTRY))})", "unknown_resource_type"))
            continue
        kind = kinds[key] = REGISTRY[type_name]
        spec = member.get("spec", {})
        if not isinstance(spec, dict):
            problems.add(InvalidRequest.about(f"{where}.spec", "must be a JSON object"))
            spec = {}
        specs[key] = spec
        member_tags = problems.check(_prefixed, f"{where}.", checked_tags, member.get("tags"))
        tags[key] = {**stack_tags, **(member_tags or {})}
        if stack_name is not None or member.get("name") is not None:
            name = member_name(stack_name or "", key, member.get("name"))
            if problems.check(_prefixed, f"{where}.", kind.validate_name, name) is not None:
                names[key] = name
        found = []
        for reference in references_in(spec):
            if isinstance(reference, InvalidRequest):
                problems.add(_prefixed_error(f"{where}.", reference))
            else:
                found.append(reference)
        references[key] = found

    for key, found in references.items():
        for reference in found:
            path = f"members.{key}.{reference.path}"
            target = kinds.get(reference.member)
            if reference.member not in members:
                problems.add(InvalidRequest.about(
                    path, f"refers to {reference.member!r}, which is not a member of this "
                    f"stack (members: {', '.join(members)})", "unknown_reference"))
            elif target is not None and reference.output not in target.output_names():
                problems.add(InvalidRequest.about(
                    path, f"{reference.member} ({target.name}) has no output "
                    f"{reference.output!r}; it offers {', '.join(target.output_names())}",
                    "unknown_reference"))
    depends_on = {key: tuple(dict.fromkeys(r.member for r in found if r.member in members))
                  for key, found in references.items()}
    for key, cycle in _cycles(depends_on).items():
        problems.add(InvalidRequest.about(
            f"members.{key}", "depends on itself: " + " -> ".join(cycle), "reference_cycle"))

    physical: dict[str, str] = {}
    if env is not None:
        for key, name in names.items():
            kind = kinds[key]
            try:
                placeholder_spec = kind.parse_spec(_without_references(specs[key]))
            except InvalidRequest:
                placeholder_spec = None
            if placeholder_spec is not None:
                physical[key] = problems.check(
                    _prefixed, f"members.{key}.", kind.physical_name,
                    prefix=settings.name_prefix, environment=env.name, name=name,
                    spec=placeholder_spec) or ""
        predicted = {key: predicted_outputs(kinds[key], environment=env, name=names[key],
                                            physical_name=physical.get(key) or names[key])
                     for key in names}
        for key in kinds:
            if problems.names(f"members.{key}") or any(
                    problems.names(f"members.{dep}") for dep in depends_on.get(key, ())):
                continue
            try:
                resolved = resolve(specs[key], predicted)
            except KeyError:
                continue  # a reference to a member with a problem: already reported
            parsed = problems.check(_prefixed, f"members.{key}.", kinds[key].parse_spec,
                                    resolved)
            if parsed is not None:
                outside = [ref for ref in kinds[key].references(parsed)
                           if ref not in {(kinds[k].name, n) for k, n in names.items()}]
                problems.check(_prefixed, f"members.{key}.", _check_outside, env.name, outside)
        problems.check(_names_free, env.name, kinds, names)
    problems.raise_any()
    assert env is not None and stack_name is not None and team is not None
    order = _order(list(members), depends_on)
    planned = tuple(
        PlannedMember(key=key, resource_type=kinds[key].name, name=names[key],
                      spec=specs[key], tags=tags[key], depends_on=depends_on[key],
                      position=order.index(key), physical_name=physical.get(key) or "")
        for key in order
    )
    ttl, expires_at = lifetime or (None, None)
    return PlannedStack(environment=env, name=stack_name, rollback=rollback, team=team,
                        members=planned, ttl=ttl, expires_at=expires_at)


def _lifetime(document: dict[str, Any],
              env: EnvironmentSettings | None) -> tuple[timedelta | None, datetime | None]:
    """The stack's (ttl, expires_at), checked as a create request's are: within the
    environment's max_ttl, and required where it requires a ttl. A document is JSON, so
    expires_at comes as ISO 8601 text."""
    expires_at = document.get("expires_at")
    if isinstance(expires_at, str):
        try:
            expires_at = parse_datetime(expires_at) or expires_at
        except ValueError:
            pass  # well formed but no such time: check_moment refuses the text
    return requested_lifetime(ttl=document.get("ttl"), expires_at=expires_at,
                              action=RequestAction.CREATE, environment=env,
                              now=timezone.now())


def _stack_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or not 3 <= len(name) <= 30:
        raise InvalidRequest.about("name", f"{name!r} is not a stack name: 3 to 30 "
                                   f"characters; {NAME_RULE}", "invalid_name")
    return name


def _prefixed(prefix: str, check, /, *args: Any, **kwargs: Any):
    try:
        return check(*args, **kwargs)
    except InvalidRequest as exc:
        raise _prefixed_error(prefix, exc) from None


def _prefixed_error(prefix: str, exc: InvalidRequest) -> InvalidRequest:
    fields = exc.fields or {"body": [exc.message]}
    return InvalidRequest.about_each({prefix + field: problems
                                      for field, problems in fields.items()}, exc.code)


def _without_references(spec: Any) -> Any:
    """The spec with each reference as a plain string (for its name, which depends on
    nothing a reference holds)."""
    if isinstance(spec, dict):
        if REF in spec and len(spec) == 1:
            return "placeholder"
        return {key: _without_references(item) for key, item in spec.items()}
    if isinstance(spec, list):
        return [_without_references(item) for item in spec]
    return spec


def _check_outside(environment: str, references: list[tuple[str, str]]) -> None:
    """A spec's references to resources outside the stack must name live ones."""
    arns = selectors.reference_arns(environment=environment, references=references)
    missing = [f"refers to {type_name} {name!r}, which KRP does not manage in {environment}"
               for type_name, name in references if (type_name, name) not in arns]
    if missing:
        raise InvalidRequest.about_each({"spec": missing}, "unknown_reference")


def _names_free(environment: str, kinds: dict[str, ResourceType],
                names: dict[str, str]) -> None:
    """Each member's name is free: no live resource and no request in flight holds it, and
    no two members of one type share it."""
    problems: dict[str, list[str]] = {}
    seen: dict[tuple[str, str], str] = {}
    for key, name in names.items():
        target = (kinds[key].name, name)
        if target in seen:
            problems[f"members.{key}.name"] = [f"{name!r} is also member {seen[target]}'s name"]
            continue
        seen[target] = key
        where = f"{kinds[key].name} {environment}/{name}"
        if selectors.resource_live(environment=environment, resource_type=kinds[key].name,
                                   name=name) is not None:
            problems[f"members.{key}.name"] = [f"{where} already exists; give the member "
                                               "another name"]
        elif selectors.request_in_flight(environment=environment,
                                         resource_type=kinds[key].name, name=name):
            problems[f"members.{key}.name"] = [f"{where} has a request in flight"]
    if problems:
        raise InvalidRequest.about_each(problems, "name_taken")


def _cycles(depends_on: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """Member -> the cycle it is on (as a path back to itself), for each member on one."""
    found: dict[str, list[str]] = {}
    for start in depends_on:
        path = [start]
        stack = [(start, iter(depends_on.get(start, ())))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                continue
            if child == start:
                found[start] = [*path, start]
                break
            if child in path or child not in depends_on:
                continue
            path.append(child)
            stack.append((child, iter(depends_on.get(child, ()))))
    return found


def _order(keys: list[str], depends_on: dict[str, tuple[str, ...]]) -> list[str]:
    """The members step by step, as they will run: first those that depend on nothing,
    then those whose dependencies are all in earlier steps; as written within a step."""
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(keys):
        step = [key for key in keys
                if key not in done and all(dep in done for dep in depends_on.get(key, ()))]
        order.extend(step)
        done.update(step)
    return order
