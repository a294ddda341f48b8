"""Saved rules the builder cannot show are never approximated (that would change members)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from tests.factories import make_segment
from tests.web.segments.conftest import HX, builder_data
from webapp.evaluation import (
    EnvironmentSnapshot,
    IdentityInput,
    SegmentInput,
    compile_snapshot,
    evaluate,
)
from webapp.extensions import db
from webapp.forms.segments import SegmentForm, fits_builder, form_to_rules, rules_to_formdata
from webapp.models import Segment
from webapp.services.segments import sql_membership

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


def _c(prop: str, value: str, operator: str = "EQUAL") -> dict[str, Any]:
    return {"property_": prop, "operator": operator, "value": value}


def _rule(kind: str, conditions=(), rules=()) -> dict[str, Any]:
    return {"type": kind, "conditions": list(conditions), "rules": list(rules)}


FITTING = {
    "builder shape": [_rule("ALL", rules=[_rule("ANY", [_c("a", "1"), _c("b", "1")]),
                                          _rule("NONE", [_c("c", "1")])])],
    "top ALL with its own conditions": [_rule("ALL", [_c("a", "1")],
                                              [_rule("ANY", [_c("b", "1")])])],
    "top ANY over groups": [_rule("ANY", rules=[_rule("ALL", [_c("a", "1"), _c("b", "1")]),
                                                _rule("ALL", [_c("c", "1")])])],
    "several flat top-level rules": [_rule("ANY", [_c("a", "1"), _c("b", "1")]),
                                     _rule("NONE", [_c("c", "1")])],
}  # fmt: skip
NOT_FITTING = {
    "a group with nested rules": [_rule("ALL", rules=[
        _rule("ANY", [_c("a", "1")], [_rule("ALL", [_c("b", "1"), _c("c", "1")])])])],
    "top ANY with its own conditions and groups": [
        _rule("ANY", [_c("a", "1"), _c("b", "1")], [_rule("ALL", [_c("c", "1")])])],
    "top NONE": [_rule("NONE", rules=[_rule("ANY", [_c("a", "1")])])],
    "a top-level rule with nested rules among several": [
        _rule("ALL", [_c("a", "1")]), _rule("ANY", rules=[_rule("ANY", [_c("b", "1")])])],
}  # fmt: skip
# Every combination of the three traits a, b, c being "1", "0" or missing.
PEOPLE = [
    {k: v for k, v in zip("abc", values, strict=True) if v is not None}
    for values in itertools.product(("1", "0", None), repeat=3)
]


def _members(rules: list[dict[str, Any]]) -> list[bool]:
    segment = SegmentInput(key="1", name="s", rules=sql_membership.rules_from_document(rules))
    compiled = compile_snapshot(EnvironmentSnapshot("key", "env", segments=(segment,)))
    return [bool(evaluate(compiled, IdentityInput("x", traits)).segments) for traits in PEOPLE]


def _through_builder(app, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Load rules into the builder and post them back unchanged."""
    data = rules_to_formdata(rules)
    fields = builder_data(groups=[
        (g["type"], [(c["property_"], c["operator"], c["value"]) for c in g["conditions"]])
        for g in data["groups"]], match=data["match"])  # fmt: skip
    with app.test_request_context(method="POST", data=MultiDict(fields)):
        return form_to_rules(SegmentForm(meta={"csrf": False}))


@pytest.mark.parametrize("name", FITTING)
def test_fits_builder__builder_shapes__round_trip_with_the_same_members(app, name):
    rules = FITTING[name]
    assert fits_builder(rules)
    assert _members(_through_builder(app, rules)) == _members(rules)


def test_fits_builder__no_rules__fits_and_loads_as_an_empty_builder():
    # (Saving needs at least one group, so an empty segment cannot round-trip unchanged.)
    assert fits_builder([])
    assert rules_to_formdata([])["groups"] == []


@pytest.mark.parametrize("name", NOT_FITTING)
def test_fits_builder__deeper_shapes__are_refused_because_flattening_changes_members(app, name):
    # Given rules the builder cannot show
    rules = NOT_FITTING[name]
    # Then they do not fit, and the flattened builder version would match other identities
    assert not fits_builder(rules)
    assert _members(_through_builder(app, rules)) != _members(rules)


@pytest.fixture
def nested(world):
    rules = NOT_FITTING["a group with nested rules"]
    segment = make_segment(world.project, "Imported nested", rules)
    db.session.commit()
    return segment


def test_edit__nested_rules__shows_them_read_only_and_an_empty_builder(client, auth, world, nested):
    auth.login("editor@example.com")
    html = client.get(f"/environments/{world.env.id}/segments/{nested.id}/edit").get_data(
        as_text=True
    )
    assert 'id="unbuildable-rules"' in html
    assert 'id="segment-builder"' in html
    assert 'name="groups-0-type"' not in html  # nothing flattened into the builder


def test_edit__builder_made_rules__are_loaded_without_the_notice(client, auth, world):
    auth.login("editor@example.com")
    html = client.get(f"/environments/{world.env.id}/segments/{world.segment.id}/edit").get_data(
        as_text=True
    )
    assert 'id="unbuildable-rules"' not in html
    assert 'name="groups-0-type"' in html


def test_update__nested_rules__saving_replaces_them_with_the_builder_rules(
    client, auth, world, nested
):
    # Given an editor who built new rules for a segment with nested ones
    auth.login("editor@example.com")
    data = builder_data(name="Imported nested", version=nested.version)
    # When saving
    response = client.put(
        f"/environments/{world.env.id}/segments/{nested.id}/edit", data=data, headers=HX
    )
    # Then the new rules replace the old ones, and the builder shows them from now on
    assert response.status_code == 200
    saved = db.session.get(Segment, nested.id)
    db.session.refresh(saved)
    assert fits_builder(saved.rules)
    assert saved.rules[0]["rules"][0]["conditions"][0]["property_"] == "plan"
