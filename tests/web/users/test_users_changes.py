"""Creating and deleting identities from the Users page, and bulk actions on a search."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.web.users.conftest import HX, table_counts
from webapp.extensions import db
from webapp.models import AuditEvent, Environment, Identity, IdentityOverride

# Database behaviour (bulk changes on a search, in SQL): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")


def _identifiers() -> set[str]:
    return set(db.session.scalars(select(Identity.identifier)))


def _revision(world) -> int:
    db.session.expire_all()
    return db.session.get(Environment, world.environment.id).revision


# ----------------------------------------------------------------------------- create


def test_create__pasted_lines__creates_valid_and_reports_the_rest(client, auth, world):
    # Given an editor pasting new, existing, repeated and invalid identifiers
    auth.login("editor@example.com")
    pasted = "new-1\n  new-2  \n\nalice@acme.com\nnew-1\n" + "x" * 2001 + "\nbad\x01id\n"
    # When creating them with htmx
    response = client.post(f"{world.url}", data={"identifiers": pasted}, headers=HX)
    # Then the valid ones exist, the rest is reported inline, and the table is told to refresh
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<details id="create-identities"')
    assert "Created 2 identities" in body
    assert "alice@acme.com" in body and "longer than 2,000 characters" in body
    assert "control characters" in body
    assert "identities-changed" in response.headers["HX-Trigger"]
    assert {"new-1", "new-2"} <= _identifiers()
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "create")).all()
    assert sorted(e.object_label for e in events) == ["new-1", "new-2"]


def test_create__empty__is_422_partial_and_creates_nothing(client, auth, world):
    auth.login("editor@example.com")
    before = table_counts()
    response = client.post(f"{world.url}", data={"identifiers": "  \n \n"}, headers=HX)
    assert response.status_code == 422
    assert 'id="create-identities"' in response.get_data(as_text=True)
    assert "<html" not in response.get_data(as_text=True)
    assert table_counts() == before


def test_create__plain_post__redirects(client, auth, world):
    auth.login("editor@example.com")
    response = client.post(f"{world.url}", data={"identifiers": "plain-1"})
    assert response.status_code == 302 and response.headers["Location"].endswith(world.url)
    assert "plain-1" in _identifiers()


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_create__below_editor__is_403_and_changes_nothing(client, auth, world, role):
    auth.login(f"{role}@example.com")
    before = table_counts()
    response = client.post(f"{world.url}", data={"identifiers": "sneaky"}, headers=HX)
    assert response.status_code == 403
    assert table_counts() == before


# ----------------------------------------------------------------------------- delete


def _carol() -> Identity:
    return db.session.scalar(select(Identity).where(Identity.identifier == "carol@other.org"))


def test_delete__htmx__removes_identity_traits_overrides_and_audits(client, auth, world):
    # Given carol with 3 traits and 1 override
    auth.login("editor@example.com")
    carol_id = _carol().id
    revision = _revision(world)
    # When an editor deletes her
    response = client.delete(f"{world.url}/{carol_id}", headers=HX)
    # Then the row is swapped out (empty 200), everything of hers is gone and audited
    assert response.status_code == 200 and response.get_data() == b""
    assert "identities-changed" in response.headers["HX-Trigger"]
    db.session.expire_all()
    assert table_counts()[:3] == (3, 7, 0)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "delete"))
    assert event.object_type == "identity" and event.identity_id == carol_id
    assert event.before["traits"] == {"age": 41, "beta": True, "plan": "pro"}
    assert event.before["overrides"] == {"new_checkout": {"enabled": True, "value": "on"}}
    assert _revision(world) == revision + 1


def test_delete__plain_post__redirects(client, auth, world):
    auth.login("admin@example.com")
    response = client.post(f"{world.url}/{_carol().id}/delete")
    assert response.status_code == 302
    assert "carol@other.org" not in _identifiers()


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_delete__below_editor__is_403_and_changes_nothing(client, auth, world, role):
    auth.login(f"{role}@example.com")
    before = table_counts()
    assert client.delete(f"{world.url}/{_carol().id}", headers=HX).status_code == 403
    assert client.post(f"{world.url}/{_carol().id}/delete").status_code == 403
    assert table_counts() == before


def test_delete__identity_of_another_environment__is_404(client, auth, world):
    from tests.factories import make_environment, make_identity

    other = make_identity(make_environment(world.project, "Staging"), "elsewhere")
    db.session.commit()
    auth.login("editor@example.com")
    assert client.delete(f"{world.url}/{other.id}", headers=HX).status_code == 404
    assert "elsewhere" in _identifiers()


# ----------------------------------------------------------------------------- bulk


def _bulk(client, world, action, q, expected=None, **extra):
    data = {"action": action, "q": q, **extra}
    if expected is not None:
        data["expected"] = str(expected)
        return client.post(f"{world.url}/bulk", data=data, headers=HX)
    return client.post(f"{world.url}/bulk/preview", data=data, headers=HX)


def test_bulk_delete__dry_run_count__equals_rows_deleted_and_one_audit_event(client, auth, world):
    # Given an editor and a search matching two identities
    auth.login("editor@example.com")
    before = table_counts()
    # When asking for the dry run
    preview = _bulk(client, world, "delete", "plan = pro")
    # Then it shows the count and changes nothing
    body = preview.get_data(as_text=True)
    assert preview.status_code == 200 and body.lstrip().startswith('<section id="bulk-panel"')
    assert "This affects <strong>2</strong>" in body
    assert table_counts() == before
    revision = _revision(world)
    # When confirming
    response = _bulk(client, world, "delete", "plan = pro", expected=2)
    # Then exactly those two are gone, recorded as ONE event with the count
    assert response.status_code == 200
    assert _identifiers() == {"bob@acme.com", "dave"}
    events = db.session.scalars(select(AuditEvent)).all()
    assert len(events) == 1
    event = events[0]
    assert (event.action, event.object_type, event.count) == ("bulk_delete", "identity", 2)
    assert event.before == {"query": "plan = pro", "has_overrides": False}
    assert _revision(world) == revision + 1


def test_bulk_override__adds_or_updates_override_for_every_match(client, auth, world):
    # Given two "pro" identities, one of which (carol) already overrides the feature
    auth.login("editor@example.com")
    fields = {"feature_id": str(world.feature.id), "enabled": "y", "value_type": "integer"}
    fields["value"] = "5"
    preview = _bulk(client, world, "override", "plan = pro", **fields)
    assert "This affects <strong>2</strong>" in preview.get_data(as_text=True)
    # When confirming
    response = _bulk(client, world, "override", "plan = pro", expected=2, **fields)
    # Then both have an enabled override with value 5, and one audit event counts 2
    assert response.status_code == 200
    db.session.expire_all()
    overrides = db.session.scalars(select(IdentityOverride)).all()
    assert len(overrides) == 2
    assert {(o.enabled, o.value, o.version >= 1) for o in overrides} == {(True, 5, True)}
    assert len({o.hash_key for o in overrides}) == 2
    event = db.session.scalar(select(AuditEvent))
    assert (event.action, event.count) == ("bulk_override", 2)
    assert event.after == {"feature": "new_checkout", "enabled": True, "value": 5}


def test_bulk_remove_overrides__counts_only_identities_with_overrides(client, auth, world):
    auth.login("editor@example.com")
    preview = _bulk(client, world, "remove_overrides", "")
    assert "This affects <strong>1</strong>" in preview.get_data(as_text=True)
    response = _bulk(client, world, "remove_overrides", "", expected=1)
    assert response.status_code == 200
    assert table_counts()[2] == 0
    event = db.session.scalar(select(AuditEvent))
    assert (event.action, event.count) == ("bulk_remove_overrides", 1)


def test_bulk_apply__result_changed_since_dry_run__is_422_and_changes_nothing(client, auth, world):
    auth.login("editor@example.com")
    before = table_counts()
    response = _bulk(client, world, "delete", "plan = pro", expected=5)
    assert response.status_code == 422
    assert "now matches 2 identities, not 5" in response.get_data(as_text=True)
    assert table_counts() == before


@pytest.mark.parametrize(
    ("action", "q", "extra", "message"),
    [
        ("delete", "age >", {}, "Could not read"),
        ("override", "", {}, "Choose the feature to override"),
        ("override", "", {"feature_id": "1", "value_type": "integer", "value": "x"}, "whole"),
        ("explode", "", {}, "Not a valid choice"),
    ],
)
def test_bulk_preview__invalid__is_422_partial(client, auth, world, action, q, extra, message):
    auth.login("editor@example.com")
    response = _bulk(client, world, action, q, **extra)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="bulk-panel"' in body and "<html" not in body and message in body


def test_bulk_override__feature_of_another_project__is_422(client, auth, world):
    from tests.factories import make_environment, make_feature, make_project

    other = make_project("Other")
    make_environment(other)
    foreign = make_feature(other, "theirs")
    db.session.commit()
    auth.login("editor@example.com")
    response = _bulk(client, world, "override", "", feature_id=str(foreign.id), value_type="null")
    assert response.status_code == 422
    assert "feature of this project" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_bulk__below_editor__is_403_and_changes_nothing(client, auth, world, role):
    auth.login(f"{role}@example.com")
    before = table_counts()
    assert _bulk(client, world, "delete", "").status_code == 403
    assert _bulk(client, world, "delete", "", expected=4).status_code == 403
    assert table_counts() == before


def test_bulk_apply__plain_post__redirects_with_query(client, auth, world):
    auth.login("editor@example.com")
    response = client.post(
        f"{world.url}/bulk", data={"action": "delete", "q": "dave", "expected": "1"}
    )
    assert response.status_code == 302
    assert "q=dave" in response.headers["Location"]
    assert "dave" not in _identifiers()


def test_bulk_preview__plain_post__renders_full_confirmation_page(client, auth, world):
    auth.login("editor@example.com")
    response = client.post(f"{world.url}/bulk/preview", data={"action": "delete", "q": "bob"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in body
    assert "This affects <strong>1</strong> identity" in body
