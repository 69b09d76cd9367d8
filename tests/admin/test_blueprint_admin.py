"""Blueprints in the admin: the list (latest version, how many), a blueprint's page with its
versions; a version is checked as the API would instantiate it, each problem shown under
its field and nothing saved; a version a stack has used is shown read-only, saying why,
and a save of it is refused without an error page."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.urls import reverse

from provisioning.models import Blueprint, BlueprintVersion
from provisioning.services import stack_submit
from provisioning.services.blueprints import blueprint_instantiate
from tests.fixtures.stacks import stack_name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox", "long_lease")]

DOCUMENT = {"members": {"files": {"resource_type": "s3_bucket",
                                  "spec": {"versioning": {"param": "versioning"}}}}}
SCHEMA = {"type": "object", "properties": {"versioning": {"type": "boolean",
                                                          "default": False}}}


@pytest.fixture
def blueprint() -> Blueprint:
    """A blueprint of two versions: one bucket, its versioning a parameter."""
    made = Blueprint.objects.create(name=f"bucket-{uuid.uuid4().hex[:6]}", title="One bucket")
    for number in (1, 2):
        BlueprintVersion.objects.create(blueprint=made, version=number, document=DOCUMENT,
                                        parameters_schema=SCHEMA, notes=f"release {number}")
    return made


@pytest.fixture
def used(blueprint, requester) -> BlueprintVersion:
    """The blueprint's version 1, instantiated into a stack."""
    version = blueprint.versions.get(version=1)
    document = blueprint_instantiate(version, environment="alpha", name=stack_name("bp"),
                                     parameters={})
    stack_submit(user=requester, document=document, blueprint=version, parameters={})
    return version


def add_version(client, blueprint: Blueprint, *, document, schema, version: int = 3):
    return client.post(reverse("admin:provisioning_blueprintversion_add"), {
        "blueprint": blueprint.pk, "version": version, "document": json.dumps(document),
        "parameters_schema": json.dumps(schema), "notes": "",
    })


def field_errors(page) -> dict[str, list[str]]:
    form = page.context["adminform"].form
    return {field: list(errors) for field, errors in form.errors.items()}


def test_the_list_shows_each_blueprints_latest_version_and_how_many(client, staff_operator,
                                                                   blueprint):
    client.force_login(staff_operator)

    text = client.get(reverse("admin:provisioning_blueprint_changelist")).content.decode()

    row = re.search(rf'<tr>.*?>{blueprint.name}</a></th>(.*?)</tr>', text, re.S).group(1)
    assert '<td class="field-title">One bucket</td>' in row
    assert '<td class="field-latest_version">v2</td>' in row
    assert '<td class="field-version_count">2</td>' in row


def test_a_blueprints_page_lists_its_versions_and_offers_the_next(client, staff_operator,
                                                                  blueprint):
    client.force_login(staff_operator)

    text = client.get(reverse("admin:provisioning_blueprint_change",
                              args=[blueprint.pk])).content.decode()

    assert "release 1" in text and "release 2" in text
    for version in blueprint.versions.all():
        assert reverse("admin:provisioning_blueprintversion_change",
                       args=[version.pk]) in text
    add = reverse("admin:provisioning_blueprintversion_add")
    assert f'href="{add}?blueprint={blueprint.pk}&amp;version=3">Add version 3</a>' in text


def test_a_version_with_a_placeholder_for_an_undeclared_parameter_is_refused_under_document(
    client, staff_operator, blueprint
):
    document = {"members": {"files": {"resource_type": "s3_bucket",
                                      "spec": {"versioning": {"param": "colour"}}}}}
    client.force_login(staff_operator)

    page = add_version(client, blueprint, document=document, schema=SCHEMA)

    assert page.status_code == 200
    assert field_errors(page) == {
        "document": ["has placeholders for undeclared parameters: colour"]}
    assert not blueprint.versions.filter(version=3).exists()


def test_every_problem_is_shown_under_its_own_field(client, staff_operator, blueprint):
    client.force_login(staff_operator)

    page = add_version(client, blueprint, document={"members": {}, "environment": "alpha"},
                       schema={"type": "array"})

    errors = field_errors(page)
    assert set(errors) == {"document", "parameters_schema"}
    assert "holds only members, tags, rollback" in errors["document"][0]
    assert errors["parameters_schema"] == ['must be a JSON Schema with "type": "object"']
    assert "errorlist" in page.content.decode()
    assert not blueprint.versions.filter(version=3).exists()


def test_a_sound_version_is_published(client, staff_operator, blueprint):
    client.force_login(staff_operator)

    page = add_version(client, blueprint, document=DOCUMENT, schema=SCHEMA)

    assert page.status_code == 302
    assert blueprint.versions.get(version=3).document == DOCUMENT


def test_a_version_a_stack_used_is_shown_read_only_saying_why(client, staff_operator, used):
    client.force_login(staff_operator)

    text = client.get(reverse("admin:provisioning_blueprintversion_change",
                              args=[used.pk])).content.decode()

    assert f"{used} is used by stacks: it cannot change; publish a new version instead" in text
    assert 'name="_save"' not in text and "deletelink" not in text
    assert "1 stack(s)" in text


def test_saving_a_used_version_is_refused_and_changes_nothing(client, staff_operator, used):
    client.force_login(staff_operator)

    answer = client.post(reverse("admin:provisioning_blueprintversion_change",
                                 args=[used.pk]), {
        "blueprint": used.blueprint_id, "version": 1, "document": json.dumps({"members": {}}),
        "parameters_schema": json.dumps(SCHEMA), "notes": "changed"})

    used.refresh_from_db()
    assert answer.status_code == 403
    assert used.document == DOCUMENT and used.notes == "release 1"


def test_a_version_no_stack_used_can_still_be_changed(client, staff_operator, blueprint, used):
    unused = blueprint.versions.get(version=2)
    client.force_login(staff_operator)

    answer = client.post(reverse("admin:provisioning_blueprintversion_change",
                                 args=[unused.pk]), {
        "blueprint": blueprint.pk, "version": 2, "document": json.dumps(DOCUMENT),
        "parameters_schema": json.dumps(SCHEMA), "notes": "fixed a typo"})

    unused.refresh_from_db()
    assert answer.status_code == 302 and unused.notes == "fixed a typo"
