"""Rule builder: create, edit, validation, conflicts, htmx add/remove, preview, delete, roles."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from tests.web.segments.conftest import HX, builder_data
from webapp.evaluation.operators import OPERATORS, VERSION_WIDGET
from webapp.extensions import db
from webapp.models import AuditEvent, Environment, Segment

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


def _segments():
    return db.session.scalar(select(func.count(Segment.id)))


def _audits(action):
    return db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == action))


def test_new__editor__shows_builder_with_operators_and_trait_keys(client, auth, world):
    auth.login("editor@example.com")
    html = client.get(f"/environments/{world.env.id}/segments/new").get_data(as_text=True)
    assert 'id="segment-builder"' in html and 'id="segment-preview"' in html
    # Every registered operator, with its label, and the semver variants of the comparisons
    options = dict(re.findall(r'<option (?:selected )?value="([^"]+)">([^<]*)</option>', html))
    for operator in OPERATORS.values():
        assert options[operator.name] == escape(operator.label)
        assert (f'value="{operator.name}:semver"' in html) is operator.semver
    assert 'value="EQUAL:semver"' in html  # spot check: the Flagsmith spelling plus suffix
    assert '<datalist id="trait-keys">' in html and 'value="country"' in html
    assert 'value="$.identity.identifier"' in html and "Environment name" in html


def test_create__valid_rules__saves_document_shape_audits_and_redirects(client, auth, world):
    # Given an editor
    auth.login("editor@example.com")
    revision = world.env.revision
    # When saving plan = pro AND (country IN DE,FR) through htmx
    response = client.post(f"/environments/{world.env.id}/segments/new", data=builder_data(),
                           headers=HX)  # fmt: skip
    # Then the segment is stored in the Flagsmith shape, audited, revisions bumped
    segment = db.session.scalars(select(Segment).filter_by(name="Pro in EU")).one()
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].endswith(f"/segments/{segment.id}")
    assert segment.rules == [{"type": "ALL", "conditions": [], "rules": [
        {"type": "ANY", "rules": [], "conditions": [
            {"operator": "EQUAL", "property_": "plan", "value": "pro"}]},
        {"type": "ANY", "rules": [], "conditions": [
            {"operator": "IN", "property_": "country", "value": "DE,FR"}]}]}]  # fmt: skip
    assert _audits("create") == 1
    assert db.session.get(Environment, world.env.id).revision == revision + 1


def test_create__plain_form_post__redirects_with_location(client, auth, world):
    auth.login("editor@example.com")
    response = client.post(f"/environments/{world.env.id}/segments/new", data=builder_data())
    assert response.status_code == 303 and "/segments/" in response.headers["Location"]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (("age", "MODULO", "2"), "divisor|remainder"),
        (("age", "MODULO", "0|0"), "must not be zero"),
        (("name", "REGEX", "(unclosed"), "invalid regular expression"),
        (("", "PERCENTAGE_SPLIT", "150"), "between 0 and 100"),
        (("", "PERCENTAGE_SPLIT", "abc"), "between 0 and 100"),
        (("", "EQUAL", "x"), "no property"),
        (("version", "GREATER_THAN:semver", "1.2"), "invalid semantic version"),
        (("$.identity.nope", "EQUAL", "x"), "unsupported path"),
    ],
)
def test_create__invalid_condition__422_inline_error_and_nothing_saved(
    client, auth, world, condition, message
):
    # Given an editor and one bad condition in the second group
    auth.login("editor@example.com")
    data = builder_data(groups=[("ANY", [("plan", "EQUAL", "pro")]), ("ANY", [condition])])
    # When saving
    response = client.post(f"/environments/{world.env.id}/segments/new", data=data, headers=HX)
    # Then the builder comes back with the message next to that condition
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith('<div id="segment-builder">') and "<html" not in html
    error = html.split('id="condition-1-0-error">')[1].split("</p>")[0]
    assert message in error
    assert _segments() == 1


def test_create__empty_group_or_no_group__422(client, auth, world):
    auth.login("editor@example.com")
    url = f"/environments/{world.env.id}/segments/new"
    empty = client.post(url, data=builder_data(groups=[("ANY", [])]), headers=HX)
    none = client.post(url, data=builder_data(groups=[]), headers=HX)
    assert empty.status_code == 422 and 'id="group-0-error"' in empty.get_data(as_text=True)
    assert none.status_code == 422 and 'id="builder-error"' in none.get_data(as_text=True)
    assert _segments() == 1


def test_create__missing_name__422(client, auth, world):
    auth.login("editor@example.com")
    response = client.post(f"/environments/{world.env.id}/segments/new",
                           data=builder_data(name=""), headers=HX)  # fmt: skip
    assert response.status_code == 422 and 'class="field has-error"' in response.get_data(
        as_text=True
    )
    assert _segments() == 1


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_create_edit_delete__viewer_or_qa__403_and_nothing_changes(client, auth, world, role):
    # Given a viewer or QA user
    auth.login(f"{role}@example.com")
    base = f"/environments/{world.env.id}/segments"
    # When trying every editing endpoint
    responses = [
        client.get(f"{base}/new"),
        client.post(f"{base}/new", data=builder_data()),
        client.get(f"{base}/{world.segment.id}/edit"),
        client.put(f"{base}/{world.segment.id}/edit", data=builder_data(version=1)),
        client.delete(f"{base}/{world.segment.id}"),
        client.post(f"{base}/builder", data=builder_data(action="add-group")),
        client.post(f"{base}/preview", data=builder_data()),
    ]
    # Then all are refused and nothing changed
    assert [r.status_code for r in responses] == [403] * 7
    db.session.expire_all()
    assert _segments() == 1 and db.session.get(Segment, world.segment.id).name == "Pro users"
    assert db.session.scalar(select(func.count(AuditEvent.id))) == 0


def test_builder__add_and_remove_actions__rerender_from_posted_state(client, auth, world):
    auth.login("editor@example.com")
    url = f"/environments/{world.env.id}/segments/builder"
    added = client.post(url, data=builder_data(action="add-condition:1"), headers=HX)
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and html.lstrip().startswith('<div id="segment-builder">')
    assert 'id="condition-1-1"' in html and 'value="DE,FR"' in html  # state kept
    group = client.post(url, data=builder_data(action="add-group"), headers=HX)
    assert 'id="group-2"' in group.get_data(as_text=True)
    removed = client.post(url, data=builder_data(action="remove-group:0"), headers=HX)
    html = removed.get_data(as_text=True)
    assert 'id="group-1"' not in html and 'value="country"' in html and 'value="plan"' not in html
    gone = client.post(url, data=builder_data(action="remove-condition:1:0"), headers=HX)
    assert 'id="condition-1-0"' not in gone.get_data(as_text=True)


def _value_input(html: str) -> str:
    """The first condition's value <input> (the one after its operator <select>)."""
    after_operator = html.split('id="condition-0-0"')[1].split("</select>")[1]
    return after_operator.split("<input")[1].split(">")[0]


@pytest.mark.parametrize(
    "choice", [*OPERATORS, *(f"{n}:semver" for n, o in OPERATORS.items() if o.semver)]
)
def test_builder__every_operator__renders_its_registry_widget(client, auth, world, choice):
    # Given the builder re-rendered with one condition using that operator
    auth.login("editor@example.com")
    data = builder_data(groups=[("ANY", [("age", choice, "2|0")])])
    response = client.post(f"/environments/{world.env.id}/segments/builder", data=data,
                           headers=HX)  # fmt: skip
    # Then its value input is the registry's widget (or a disabled one for valueless operators)
    field = _value_input(response.get_data(as_text=True))
    operator = OPERATORS[choice.removesuffix(":semver")]
    widget = VERSION_WIDGET if choice.endswith(":semver") else operator.widget
    if widget is None:
        assert "disabled" in field and 'placeholder="(no value)"' in field
        return
    assert "disabled" not in field
    for attribute, text in widget.html.items():
        assert f'{attribute}="{escape(text)}"' in field, (attribute, field)


def test_builder__in_operator__renders_chips(client, auth, world):
    auth.login("editor@example.com")
    response = client.post(f"/environments/{world.env.id}/segments/builder",
                           data=builder_data(), headers=HX)  # fmt: skip
    chips = response.get_data(as_text=True).split('id="chips-1-0"')[1].split("</span>\n")[0]
    assert '<span class="chip">DE</span>' in chips and '<span class="chip">FR</span>' in chips


def test_preview__new_rules__counts_and_samples_members(client, auth, world):
    auth.login("editor@example.com")
    response = client.post(f"/environments/{world.env.id}/segments/preview", data=builder_data(),
                           headers=HX)  # fmt: skip
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="segment-preview-body">')
    assert '<strong id="preview-count">1</strong>' in html  # alice: pro and DE
    assert f'id="preview-identity-{world.alice.id}"' in html


def test_preview__invalid_rules__says_fix_first(client, auth, world):
    auth.login("editor@example.com")
    data = builder_data(groups=[("ANY", [("age", "MODULO", "x")])])
    response = client.post(f"/environments/{world.env.id}/segments/preview", data=data)
    assert 'id="preview-invalid"' in response.get_data(as_text=True)


def test_preview__edit__shows_entering_leaving_and_feature_changes(client, auth, world):
    # Given the saved segment (plan = pro) overrides banner
    from webapp.models import User
    from webapp.services.segments import segment_overrides

    editor = db.session.query(User).filter_by(email="editor@example.com").one()
    segment_overrides.create_override(world.segment, world.feature, world.env.id, editor,
                                      enabled=True, value="on")  # fmt: skip
    auth.login("editor@example.com")
    # When previewing plan = pro AND country IN DE,FR (carol leaves) OR ... bob stays out
    response = client.post(
        f"/environments/{world.env.id}/segments/preview?segment_id={world.segment.id}",
        data=builder_data(), headers=HX,
    )  # fmt: skip
    html = response.get_data(as_text=True)
    # Then one identity leaves and the banner changes for it
    assert '<span id="impact-entering">0</span>' in html
    assert '<span id="impact-leaving">1</span>' in html
    assert "banner: 1 identity changes value" in html


def test_edit__valid__updates_version_and_audits(client, auth, world):
    auth.login("editor@example.com")
    page = client.get(f"/environments/{world.env.id}/segments/{world.segment.id}/edit")
    assert 'value="pro"' in page.get_data(as_text=True)
    response = client.put(f"/environments/{world.env.id}/segments/{world.segment.id}/edit",
                          data=builder_data(name="Renamed", version=1), headers=HX)  # fmt: skip
    assert response.status_code == 200 and "HX-Redirect" in response.headers
    db.session.expire_all()
    segment = db.session.get(Segment, world.segment.id)
    assert segment.name == "Renamed" and segment.version == 2
    assert _audits("update") == 1


def test_edit__stale_version__409_changed_since_opened_and_both_audited(client, auth, world):
    # Given two editors who opened version 1; the first saves
    auth.login("editor@example.com")
    url = f"/environments/{world.env.id}/segments/{world.segment.id}/edit"
    first = client.put(url, data=builder_data(name="First", version=1), headers=HX)
    # When the second saves from the stale page
    second = client.put(url, data=builder_data(name="Second", version=1), headers=HX)
    # Then the second is refused inline in the builder (their rules stay on screen), the
    # first's rules stay saved, and both attempts are audited
    assert first.status_code == 200
    assert second.status_code == 409
    html = second.get_data(as_text=True)
    assert 'id="builder-error"' in html and "changed since you opened it" in html
    assert 'value="Second"' in html and "<html" not in html
    db.session.expire_all()
    assert db.session.get(Segment, world.segment.id).name == "First"
    assert _audits("update") == 1 and _audits("update_rejected") == 1


def test_edit__invalid_rules__422_and_unchanged(client, auth, world):
    auth.login("editor@example.com")
    data = builder_data(version=1, groups=[("ANY", [("x", "REGEX", "[")])])
    response = client.put(f"/environments/{world.env.id}/segments/{world.segment.id}/edit",
                          data=data, headers=HX)  # fmt: skip
    assert response.status_code == 422 and 'id="condition-0-0-error"' in response.get_data(
        as_text=True
    )
    db.session.expire_all()
    assert db.session.get(Segment, world.segment.id).version == 1


def test_delete__editor__removes_segment_audits_and_redirects(client, auth, world):
    auth.login("editor@example.com")
    response = client.delete(f"/environments/{world.env.id}/segments/{world.segment.id}",
                             headers=HX)  # fmt: skip
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].endswith(f"/environments/{world.env.id}/segments")
    assert _segments() == 0 and _audits("delete") == 1
