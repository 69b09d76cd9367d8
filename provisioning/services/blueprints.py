"""Blueprints: stack documents a platform team publishes, with parameters, for any team
to instantiate by name.

A version's document holds the stack's `members` (and optionally `tags` and `rollback`)
with `{"param": "<name>"}` wherever a parameter's value goes; its `parameters_schema` is a
JSON Schema object whose properties are the parameters (types, defaults, enums,
patterns). Instantiating one checks the parameters against that schema, fills in the
defaults and the values, and gives the stack document `stack_submit` takes, with the
environment and the stack's name the caller chose.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from provisioning.errors import InvalidRequest, Problems
from provisioning.models import Blueprint, BlueprintVersion

PARAM = "param"
DOCUMENT_FIELDS = ("members", "tags", "rollback")


def blueprint_version(*, name: Any, version: Any = None) -> BlueprintVersion:
    """A blueprint's version by number, or its latest; NotFound naming what exists."""
    if not isinstance(name, str):
        raise InvalidRequest.about("blueprint", "must be a blueprint's name",
                                   "invalid_blueprint")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise InvalidRequest.about("version", "must be a whole number", "invalid_blueprint")
    blueprint = Blueprint.objects.filter(name=name).first()
    if blueprint is None:
        known = ", ".join(Blueprint.objects.values_list("name", flat=True)) or "none"
        raise InvalidRequest.about("blueprint", f"no blueprint {name!r} (known: {known})",
                                   "unknown_blueprint")
    versions = blueprint.versions.order_by("-version")
    chosen = versions.first() if version is None else versions.filter(version=version).first()
    if chosen is None:
        numbers = ", ".join(str(v) for v in versions.values_list("version", flat=True))
        raise InvalidRequest.about("version", f"blueprint {name!r} has no version {version} "
                                   f"(versions: {numbers or 'none'})", "unknown_blueprint")
    return chosen


def blueprint_instantiate(version: BlueprintVersion, *, environment: Any, name: Any,
                          parameters: Any, team: Any = None) -> dict[str, Any]:
    """The stack document `version` makes with `parameters`; InvalidRequest names each
    parameter that is wrong (parameters.<name>)."""
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise InvalidRequest.about("parameters", "must be a JSON object of parameter values",
                                   "invalid_parameters")
    values = with_defaults(version.parameters_schema, parameters)
    problems = Problems()
    for error in sorted(Draft202012Validator(version.parameters_schema).iter_errors(values),
                        key=lambda e: list(e.absolute_path)):
        problems.add(InvalidRequest.about(_parameter_path(error), _words(error),
                                          "invalid_parameters"))
    problems.raise_any()
    document = {key: fill(value, values) for key, value in version.document.items()
                if key in DOCUMENT_FIELDS}
    document.update(environment=environment, name=name)
    if team is not None:
        document["team"] = team
    return document


def with_defaults(schema: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    defaults = {key: spec["default"] for key, spec in (schema.get("properties") or {}).items()
                if isinstance(spec, dict) and "default" in spec}
    return {**defaults, **parameters}


def fill(value: Any, parameters: dict[str, Any]) -> Any:
    """`value` with each {"param": name} replaced by that parameter's value."""
    if isinstance(value, dict):
        if set(value) == {PARAM} and isinstance(value[PARAM], str):
            return parameters[value[PARAM]]
        return {key: fill(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, parameters) for item in value]
    return value


def placeholders(value: Any) -> set[str]:
    """The parameter names `value` has placeholders for."""
    if isinstance(value, dict):
        if set(value) == {PARAM} and isinstance(value[PARAM], str):
            return {value[PARAM]}
        return set().union(*(placeholders(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(item) for item in value)) if value else set()
    return set()


def blueprint_check(*, document: Any, parameters_schema: Any) -> None:
    """Refuse a blueprint version that could never instantiate: a schema that is not a JSON
    Schema object, a placeholder for a parameter the schema does not declare, a parameter
    without a default that is not required, fields a blueprint does not hold."""
    problems = Problems()
    if not isinstance(document, dict) or not isinstance(document.get("members"), dict):
        problems.add(InvalidRequest.about("document", 'must be a JSON object with "members"'))
    elif set(document) - set(DOCUMENT_FIELDS):
        problems.add(InvalidRequest.about(
            "document", f"holds only {', '.join(DOCUMENT_FIELDS)} (the environment and the "
            "stack's name are given when it is instantiated)"))
    if not isinstance(parameters_schema, dict) or parameters_schema.get("type") != "object":
        problems.add(InvalidRequest.about("parameters_schema",
                                          'must be a JSON Schema with "type": "object"'))
    else:
        try:
            Draft202012Validator.check_schema(parameters_schema)
        except SchemaError as exc:
            problems.add(InvalidRequest.about("parameters_schema", exc.message))
        declared = set(parameters_schema.get("properties") or {})
        missing = sorted(placeholders(document) - declared) if isinstance(document, dict) else []
        if missing:
            problems.add(InvalidRequest.about(
                "document", f"has placeholders for undeclared parameters: {', '.join(missing)}"))
    problems.raise_any()


def _parameter_path(error: Any) -> str:
    path = "parameters"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return f"parameters.{missing}" if missing else path
    if error.validator == "additionalProperties" and "'" in error.message:
        return f"parameters.{error.message.split(chr(39))[1]}"
    return path


def _words(error: Any) -> str:
    if error.validator == "required":
        return "is required"
    if error.validator == "additionalProperties":
        return "is not a parameter of this blueprint"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "pattern":
        return error.schema.get("description") or f"must match {error.validator_value}"
    return error.message


def blueprint_used(version: BlueprintVersion) -> bool:
    return version.pk is not None and version.stacks.exists()
