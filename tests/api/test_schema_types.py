"""The OpenAPI schema describes each resource type's request: its spec (from the type's own
model), its name limits, and an example that the API accepts as it stands."""

from __future__ import annotations

import pytest

from provisioning.resources import REGISTRY
from tests.api.conftest import REQUESTS

pytestmark = pytest.mark.django_db

SCHEMA = "/api/schema/?format=json"


@pytest.fixture
def schema(requester_api) -> dict:
    response = requester_api.get(SCHEMA)
    assert response.status_code == 200
    return response.json()


def examples(schema: dict) -> dict[str, dict]:
    body = schema["paths"][REQUESTS]["post"]["requestBody"]["content"]["application/json"]
    return {example["value"]["resource_type"]: example["value"]
            for example in body["examples"].values()}


def component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_the_request_body_is_one_of_a_body_per_type_told_apart_by_resource_type(schema):
    body = component(schema, schema["paths"][REQUESTS]["post"]["requestBody"]["content"]
                     ["application/json"]["schema"]["$ref"])

    assert body["discriminator"]["propertyName"] == "resource_type"
    assert set(body["discriminator"]["mapping"]) == set(REGISTRY)
    assert [option["$ref"] for option in body["oneOf"]] == list(
        body["discriminator"]["mapping"].values())


@pytest.mark.parametrize("resource_type", sorted(REGISTRY))
def test_each_type_has_its_spec_and_its_name_limits(schema, resource_type):
    kind = REGISTRY[resource_type]
    mapping = component(schema, schema["paths"][REQUESTS]["post"]["requestBody"]["content"]
                        ["application/json"]["schema"]["$ref"])["discriminator"]["mapping"]
    body = component(schema, mapping[resource_type])

    name = body["properties"]["name"]
    assert (name["minLength"], name["maxLength"]) == (3, kind.max_name_length)
    assert "lowercase letters, digits and dashes" in name["description"]
    spec = component(schema, body["properties"]["spec"]["allOf"][0]["$ref"])
    assert set(spec["properties"]) == set(kind.spec_model.model_fields)
    assert spec["additionalProperties"] is False


@pytest.mark.parametrize("resource_type", sorted(REGISTRY))
def test_each_types_example_is_accepted_as_it_stands(schema, requester, requester_api,
                                                    resource_of, resource_type):
    example = examples(schema)[resource_type]
    # What an example says it needs besides (the sns_topic's queue), made first.
    for kind, name in REGISTRY[resource_type].references(
            REGISTRY[resource_type].parse_spec(example["spec"])):
        resource_of(requester, name, resource_type=kind, environment=example["environment"])

    response = requester_api.post(REQUESTS, example, format="json")

    assert response.status_code == 202, response.json()
    assert response.json()["spec"] == {**REGISTRY[resource_type].parse_spec(example["spec"])
                                       .model_dump(mode="json")}


def test_a_spec_field_that_may_be_null_says_so_as_openapi_3_0_does(schema):
    spec = schema["components"]["schemas"]["SqsQueueSpec"]["properties"]["dead_letter_queue"]

    assert spec["nullable"] is True
    assert spec["allOf"] == [{"$ref": "#/components/schemas/DeadLetterQueueSpec"}]
