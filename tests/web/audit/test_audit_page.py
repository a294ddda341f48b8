"""Audit log page: scope, filters, keyset pagination, before/after diff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import make_environment, make_identity, make_project, make_user
from webapp.extensions import db
from webapp.models import AuditEvent
from webapp.services import audit_log

# Database behaviour (keyset paging and filters in SQL): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

HX = {"HX-Request": "true"}
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _event(minutes, **kw) -> AuditEvent:
    data = {
        "actor_label": "editor@example.com",
        "action": "update",
        "object_type": "feature",
        "object_label": "f",
        "created_at": T0 + timedelta(minutes=minutes),
        "before": None,
        "after": None,
    }
    data.update(kw)
    event = AuditEvent(**data)
    db.session.add(event)
    db.session.flush()
    return event


@pytest.fixture
def log(app):
    project = make_project("Demo")
    env = make_environment(project, "Development")
    prod = make_environment(project, "Production")
    other = make_project("Other")
    elsewhere = make_environment(other, "Elsewhere")
    make_user("viewer@example.com", "viewer", project)
    make_user("outsider@example.com", "viewer", other)
    alice = make_identity(env, "alice")
    events = {
        "project": _event(
            1,
            project_id=project.id,
            object_label="dark_mode",
            before={"name": "dark", "type": "STANDARD"},
            after={"name": "dark_mode", "type": "STANDARD"},
        ),
        "dev": _event(
            2,
            project_id=project.id,
            environment_id=env.id,
            object_type="feature_state",
            actor_label="qa@example.com",
            before={"enabled": False},
            after={"enabled": True},
        ),
        "prod": _event(
            3, project_id=project.id, environment_id=prod.id, object_type="feature_state"
        ),
        "alice": _event(
            4,
            project_id=project.id,
            environment_id=env.id,
            identity_id=alice.id,
            object_type="identity_override",
            action="delete",
            before={"value": "<script>alert(1)</script>"},
            after=None,
        ),
        "foreign": _event(5, project_id=other.id, environment_id=elsewhere.id),
    }
    db.session.commit()
    return env, prod, events


def _ids(body: str, events: dict) -> set[str]:
    return {name for name, e in events.items() if f'id="audit-event-{e.id}"' in body}


def test_index__viewer__full_page_newest_first_scoped_to_project_and_environment(client, auth, log):
    env, _, events = log
    auth.login("viewer@example.com")
    response = client.get(f"/environments/{env.id}/audit")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in body and 'id="audit-filters"' in body
    # project-level and this environment's events; not Production's, not another project's
    assert _ids(body, events) == {"project", "dev", "alice"}
    order = [body.index(f'id="audit-event-{events[n].id}"') for n in ("alice", "dev", "project")]
    assert order == sorted(order)


def test_index__htmx__returns_events_partial(client, auth, log):
    env, _, events = log
    auth.login("viewer@example.com")
    response = client.get(f"/environments/{env.id}/audit?object_type=feature_state", headers=HX)
    body = response.get_data(as_text=True)
    assert 'id="audit-events"' in body and "<html" not in body
    assert "HX-Request" in response.headers["Vary"]
    assert _ids(body, events) == {"dev"}


def test_index__outsider__is_404(client, auth, log):
    env, _, _ = log
    auth.login("outsider@example.com")
    assert client.get(f"/environments/{env.id}/audit").status_code == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("environment=project", {"project"}),
        ("environment={prod}", {"prod"}),
        ("actor=qa@example.com", {"dev"}),
        ("object_type=identity_override", {"alice"}),
        ("identity=alice", {"alice"}),
        ("identity=nobody", set()),
        ("since=2025-03-01T12:02&until=2025-03-01T12:04", {"dev"}),
        ("since=2025-03-01T12:02", {"dev", "alice"}),
    ],
)
def test_index__filters__narrow_the_events(client, auth, log, query, expected):
    env, prod, events = log
    auth.login("viewer@example.com")
    url = f"/environments/{env.id}/audit?" + query.format(prod=prod.id)
    body = client.get(url, headers=HX).get_data(as_text=True)
    assert _ids(body, events) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "Not a valid datetime value"),
        ("environment=999999", "Choose an environment of this project"),
        ("cursor=garbage", "malformed"),
    ],
)
def test_index__invalid_filter__is_422_with_inline_error(client, auth, log, query, message):
    env, _, _ = log
    auth.login("viewer@example.com")
    response = client.get(f"/environments/{env.id}/audit?{query}", headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body and 'id="audit-events"' in body and "audit-table" not in body


def test_index__diff__highlights_changed_keys_and_escapes_json(client, auth, log):
    env, _, events = log
    auth.login("viewer@example.com")
    body = client.get(f"/environments/{env.id}/audit").get_data(as_text=True)
    project_row = body.split(f'id="audit-event-{events["project"].id}"')[1].split("</details>")[0]
    assert '<tr class="changed">\n                  <th>name</th>' in project_row
    assert '<tr class="same">\n                  <th>type</th>' in project_row
    assert "<script>alert(1)" not in body
    assert "“&lt;script&gt;alert(1)&lt;/script&gt;”" in body


def test_index__keyset_pagination__walks_all_events_without_overlap(client, auth, log):
    env, _, events = log
    # Given 120 more project events, some sharing one timestamp
    for i in range(120):
        _event(10 + i // 3, project_id=env.project_id, object_label=f"bulk-{i}")
    db.session.commit()
    auth.login("viewer@example.com")
    seen, url, pages = [], f"/environments/{env.id}/audit", 0
    while url:
        body = client.get(url, headers=HX).get_data(as_text=True)
        seen += [int(part.split('"')[0]) for part in body.split('id="audit-event-')[1:]]
        pages += 1
        marker = 'id="audit-older" href="'
        url = body.split(marker)[1].split('"')[0].replace("&amp;", "&") if marker in body else None
    assert pages == 3
    assert len(seen) == len(set(seen)) == 123


def test_diff_rows__non_dict_values__compare_as_a_whole():
    rows = audit_log.diff_rows([1, 2], [2, 1])
    assert [(r.key, r.changed) for r in rows] == [("value", True)]
    assert audit_log.diff_rows(None, None) == []


def test_diff_rows__created_object__every_key_changed():
    rows = audit_log.diff_rows(None, {"b": 1, "a": "x"})
    assert [(r.key, r.before, r.after, r.changed) for r in rows] == [
        ("a", None, "“x”", True),
        ("b", None, "1", True),
    ]


def test_cursor__round_trips():
    event = AuditEvent(id=7, created_at=T0)
    assert audit_log.decode_cursor(audit_log.encode_cursor(event)) == (T0, 7)
