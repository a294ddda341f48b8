"""The role decorator: who may see and change what."""

import pytest
from sqlalchemy import func, select

from tests.factories import make_environment, make_project, make_user
from webapp.extensions import db
from webapp.models import AuditEvent, ProjectRole, ServerKey
from webapp.services import accounts

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def setup(app):
    project = make_project("Demo")
    environment = make_environment(project)
    other = make_project("Other")
    other_environment = make_environment(other)
    for role in ("viewer", "qa", "editor", "admin"):
        make_user(f"{role}@example.com", role, project)
    make_user("outsider@example.com", "admin", other)
    make_user("global@example.com", "viewer", all_projects=True)
    db.session.commit()
    return environment, other_environment


def _keys():
    return db.session.scalar(select(func.count(ServerKey.id)))


@pytest.mark.parametrize("role", ["viewer", "qa", "editor"])
def test_create_server_key__below_admin__is_403_and_changes_nothing(client, auth, setup, role):
    environment, _ = setup
    auth.login(f"{role}@example.com")
    response = client.post(f"/environments/{environment.id}/server-keys", data={"name": "k"})
    assert response.status_code == 403
    assert _keys() == 0
    assert db.session.scalar(select(func.count(AuditEvent.id))) == 0


def test_create_server_key__admin__creates_and_audits(client, auth, setup):
    environment, _ = setup
    auth.login("admin@example.com")
    response = client.post(
        f"/environments/{environment.id}/server-keys", data={"name": "k"}, follow_redirects=True
    )
    assert response.status_code == 200
    key = db.session.scalar(select(ServerKey))
    assert key.key.startswith("ser.") and key.key.encode() in response.data
    event = db.session.scalar(select(AuditEvent))
    assert (event.action, event.object_type, event.actor_label) == (
        "create",
        "server_key",
        "admin@example.com",
    )


def test_revoke_server_key__admin__revokes_and_bumps_revision(client, auth, setup):
    environment, _ = setup
    key = ServerKey(environment=environment, name="backend")
    db.session.add(key)
    db.session.commit()
    revision = environment.revision
    auth.login("admin@example.com")
    client.post(f"/environments/{environment.id}/server-keys/{key.id}/revoke")
    db.session.expire_all()
    assert key.revoked_at is not None
    assert environment.revision == revision + 1


def test_revoke_server_key__of_another_environment__is_404(client, auth, setup):
    environment, other_environment = setup
    key = ServerKey(environment=other_environment, name="theirs")
    db.session.add(key)
    db.session.commit()
    auth.login("admin@example.com")
    response = client.post(f"/environments/{environment.id}/server-keys/{key.id}/revoke")
    assert response.status_code == 404
    db.session.expire_all()
    assert key.revoked_at is None


def test_environment_page__user_of_another_project__is_404(client, auth, setup):
    environment, _ = setup
    auth.login("outsider@example.com")
    assert client.get(f"/environments/{environment.id}").status_code == 404


@pytest.mark.parametrize("email", ["viewer@example.com", "global@example.com"])
def test_environment_page__viewer__sees_it_without_key_controls(client, auth, setup, email):
    environment, _ = setup
    auth.login(email)
    response = client.get(f"/environments/{environment.id}")
    assert response.status_code == 200
    assert environment.client_key.encode() in response.data
    assert b"Create server key" not in response.data


def test_environment_page__admin__sees_key_controls(client, auth, setup):
    environment, _ = setup
    auth.login("admin@example.com")
    assert b"Create server key" in client.get(f"/environments/{environment.id}").data


def test_unknown_environment__is_404(client, auth, setup):
    auth.login("admin@example.com")
    assert client.get("/environments/999999").status_code == 404


def test_role_for__strongest_role_wins(app, setup):
    environment, _ = setup
    user = accounts.authenticate("global@example.com", "password123")
    assert accounts.role_for(user, environment.project_id) == "viewer"
    user.roles[0].role = "viewer"
    user.roles.append(ProjectRole(project_id=environment.project_id, role="editor"))
    db.session.flush()
    assert accounts.role_for(user, environment.project_id) == "editor"
    assert accounts.has_role(user, environment.project_id, "qa")
    assert not accounts.has_role(user, environment.project_id, "admin")


def test_home__lists_only_accessible_projects(client, auth, setup):
    auth.login("outsider@example.com")
    body = client.get("/").data
    assert b"Other" in body and b"Demo" not in body
