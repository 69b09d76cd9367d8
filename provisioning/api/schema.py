"""What the OpenAPI schema says of a request's body, type by type.

A request's `spec` means something different for each resource type, so the body of
POST /api/v1/requests/ is a oneOf of one component per type (`S3BucketRequestBody`, ...),
told apart by `resource_type`. Each names its type's name limits and refers to its spec
component (`S3BucketSpec`, ...), made from the type's own pydantic model, so the schema
cannot drift from what the API accepts. Each type's example (its module's example_name and
example_spec) is a working request.
"""

from __future__ import annotations

import copy
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiExample

from provisioning.api.limits import current_settings
from provisioning.resources import REGISTRY
from provisioning.resources.base import NAME_PATTERN, ResourceType

REF = "#/components/schemas/{model}"


def openapi_schema(model: type) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A pydantic model's JSON Schema as OpenAPI 3.0 understands it, and the schemas of
    the models it holds (pydantic's $defs), to register as components beside it.

    JSON Schema 2020-12 says "may be null" as anyOf [X, {"type": "null"}]; OpenAPI 3.0 says
    it with `nullable`. A `const` becomes an enum of one."""
    document = model.model_json_schema(ref_template=REF)
    definitions = {name: _openapi(schema) for name, schema in document.pop("$defs", {}).items()}
    return _openapi(document), definitions


def _openapi(node: Any) -> Any:
    if isinstance(node, list):
        return [_openapi(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _openapi(value) for key, value in node.items()}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    options = node.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            node = {**rest[0], **node}
        else:
            node["oneOf" if len(rest) > 1 else "allOf"] = rest
        node["nullable"] = True
    return node


def name_schema(kind: ResourceType) -> dict[str, Any]:
    return {"type": "string", "minLength": 3, "maxLength": kind.max_name_length,
            "pattern": NAME_PATTERN.pattern, "description": kind.name_rule()}


def body_component(kind: ResourceType) -> str:
    return kind.spec_model.__name__.removesuffix("Spec") + "RequestBody"


class RequestCreateSerializerExtension(OpenApiSerializerExtension):
    """The body of POST /api/v1/requests/ as a oneOf of one body per resource type."""

    target_class = "provisioning.api.serializers.RequestCreateSerializer"

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        common = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        refs: dict[str, str] = {}
        for kind in REGISTRY.values():
            spec, definitions = openapi_schema(kind.spec_model)
            for name, schema in {**definitions, kind.spec_model.__name__: spec}.items():
                _register(auto_schema, name, schema)
            body = {**copy.deepcopy(common), "description": f"A request about a {kind.title}."}
            body["properties"]["resource_type"] = {"type": "string", "enum": [kind.name]}
            body["properties"]["name"] = name_schema(kind)
            body["properties"]["spec"] = {
                "allOf": [{"$ref": REF.format(model=kind.spec_model.__name__)}],
                "description": f"the {kind.title}'s settings. A create gives the whole spec "
                               "(omitted fields take their defaults); an update only the "
                               "fields that change; a delete and an import none (an import "
                               "reads them from the resource it names in physical_name).",
            }
            refs[kind.name] = _register(auto_schema, body_component(kind), body)["$ref"]
        return {
            "oneOf": [{"$ref": ref} for ref in refs.values()],
            "discriminator": {"propertyName": "resource_type", "mapping": refs},
        }


def _register(auto_schema: AutoSchema, name: str, schema: dict[str, Any]) -> dict[str, str]:
    component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name,
                                  schema=schema)
    auto_schema.registry.register_on_missing(component)
    return component.ref


def request_examples() -> list[OpenApiExample]:
    """One working request per resource type, in the first environment this server knows
    (one that needs no approval when there is one)."""
    environments = current_settings().environments
    environment = next((env for env in environments if not env.requires_approval),
                       environments[0]).name
    return [
        OpenApiExample(
            kind.title, summary=f"a new {kind.title}", request_only=True,
            description=kind.example_note,
            value={"environment": environment, "resource_type": kind.name,
                   "name": kind.example_name, "spec": kind.example_spec},
        )
        for kind in REGISTRY.values()
    ]


class RequestViewSchema(AutoSchema):
    """The requests' schema, with the examples of a new request made when the schema is
    (they name this server's environments)."""

    def get_examples(self) -> list[OpenApiExample]:
        if self.method == "POST" and getattr(self.view, "action", None) == "create":
            return request_examples()
        return super().get_examples()
