"""The projects and environments pages: who sees them, what they say, what the forms do."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from tests.factories import (
    identities_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from webapp.extensions import db
from webapp.models import AuditEvent, Environment, Project, ServerKey

# Pages and rules: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def world(app):
    project = make_project("Shop")
    env = make_environment(project, "Production", production=True)
    staging = make_environment(project, "Staging")
    make_user("admin@example.com", "admin", project)
    make_user("viewer@example.com", "viewer", project)
    banner = make_feature(project, "banner", enabled=True, value="hello")
    make_feature(project, "alpha", enabled=False, value=1)
    pro = make_segment(project, "Pro")
    identities_make_segment_override(pro, banner, env, value="pro", priority=1)
    make_identity(env, "alice", traits={"plan": "pro"})
    make_identity(env, "bob")
    db.session.commit()
    return project, env, staging


def _text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def test_new_project__admin__creates_it_and_becomes_its_admin(client, auth, world):
    project, _, _ = world
    auth.login("admin@example.com")
    assert client.get("/projects/new").status_code == 200
    response = client.post(
        "/projects", data={"organisation_id": project.organisation_id, "name": "Second shop"}
    )
    created = db.session.scalar(select(Project).where(Project.name == "Second shop"))
    assert created is not None
    assert response.headers["Location"].endswith(f"/projects/{created.id}")
    page = client.get(f"/projects/{created.id}")
    assert "No environments yet" in _text(page)


def test_new_project__viewer__is_403(client, auth, world):
    auth.login("viewer@example.com")
    assert client.get("/projects/new").status_code == 403
    assert client.post("/projects", data={"organisation_id": "1", "name": "X"}).status_code == 403
    assert db.session.scalar(select(func.count(Project.id))) == 1


def test_project_page__lists_environments_with_counts_and_actions(client, auth, world):
    project, env, staging = world
    auth.login("admin@example.com")
    text = _text(client.get(f"/projects/{project.id}"))
    assert "Production production" in text  # the production badge next to the name
    assert "Staging" in text
    assert "Compare two environments" in text
    page = client.get(f"/projects/{project.id}").get_data(as_text=True)
    for env_id in (env.id, staging.id):
        assert f"/environments/{env_id}/clone" in page
        assert f"/environments/{env_id}/delete" in page


def test_project_page__thirty_environments__all_listed(client, auth, world):
    project, _, _ = world
    for n in range(28):
        make_environment(project, f"Environment number {n:02d}")
    db.session.commit()
    auth.login("admin@example.com")
    page = client.get(f"/projects/{project.id}").get_data(as_text=True)
    assert page.count('<tr id="environment-') == 30


def test_delete_environment_page__names_what_is_lost_with_counts(client, auth, world):
    _, env, _ = world
    auth.login("admin@example.com")
    text = _text(client.get(f"/environments/{env.id}/delete"))
    for expected in ("2 flag states", "1 segment override", "2 identities, with 1 trait",
                     "0 identity overrides", "0 server keys"):  # fmt: skip
        assert expected in text, text


def test_delete_environment__wrong_name__422_inline_and_nothing_goes(client, auth, world):
    _, env, _ = world
    auth.login("admin@example.com")
    response = client.post(f"/environments/{env.id}/delete", data={"confirm": "production"})
    assert response.status_code == 422
    assert "Type the environment's name exactly" in _text(response)
    assert db.session.get(Environment, env.id) is not None


def test_delete_project__exact_name__deletes_and_goes_home(client, auth, world):
    project, _, _ = world
    auth.login("admin@example.com")
    text = _text(client.get(f"/projects/{project.id}/delete"))
    assert "2 environments" in text and "2 features" in text and "1 segment" in text
    response = client.post(f"/projects/{project.id}/delete", data={"confirm": "Shop"})
    assert response.status_code == 302
    assert db.session.scalar(select(func.count(Project.id))) == 0
    assert db.session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.object_type == "project")
    ) == 1


def test_clone__form__creates_the_copy(client, auth, world):
    project, env, _ = world
    auth.login("admin@example.com")
    assert 'value="Production copy"' in client.get(f"/environments/{env.id}/clone").get_data(
        as_text=True
    )
    response = client.post(
        f"/environments/{env.id}/clone", data={"name": "Preview", "with_identities": "y"}
    )
    assert response.status_code == 302
    copy = db.session.scalar(select(Environment).where(Environment.name == "Preview"))
    assert copy is not None and copy.hashing_key == env.client_key


def test_rename_environment__taken_name__422_on_the_project_page(client, auth, world):
    _, env, _ = world
    auth.login("admin@example.com")
    response = client.post(f"/environments/{env.id}/rename", data={"name": "staging"})
    assert response.status_code == 422
    assert "already has an environment named “staging”" in _text(response)


def test_compare__differences_first_for_a_viewer(client, auth, world):
    project, env, staging = world
    auth.login("viewer@example.com")
    assert "Choose two environments" in _text(client.get(f"/projects/{project.id}/compare"))
    response = client.get(f"/projects/{project.id}/compare?left={env.id}&right={staging.id}")
    text = _text(response)
    assert response.status_code == 200
    assert "1 feature of 2 differs" in text
    # banner differs (a segment override only here) and comes first; alpha is alike
    assert text.index("banner") < text.index("alpha")
    assert "segment Pro on · “pro” · priority 1 no override differs" in text
    assert text.endswith("alpha off · 1 off · 1 same")


# ------------------------------------------------------------------------------ keys


def test_server_key__created__shown_in_full_once_never_in_the_cookie(client, auth, world):
    _, env, _ = world
    auth.login("admin@example.com")
    response = client.post(f"/environments/{env.id}/server-keys", data={"name": "backend"})
    key = db.session.scalar(select(ServerKey))
    # Then a redirect (a reload creates no second key), and the cookie holds no key
    assert response.status_code == 302
    cookies = " ".join(response.headers.getlist("Set-Cookie"))
    assert key.key not in cookies
    # The next visit shows it in full with a copy button ...
    body = client.get(f"/environments/{env.id}").get_data(as_text=True)
    assert key.key in body and 'data-copy="#new-server-key-value"' in body
    # ... and the one after lists only its prefix and its use
    page = client.get(f"/environments/{env.id}").get_data(as_text=True)
    assert key.key not in page
    assert f"{key.key[:8]}…" in page
    assert "never" in _text(client.get(f"/environments/{env.id}"))


def test_server_key__forged_session_id_of_another_environment__shows_nothing(
    client, auth, world
):
    _, env, staging = world
    other = ServerKey(environment=staging, name="theirs")
    db.session.add(other)
    db.session.commit()
    auth.login("admin@example.com")
    with client.session_transaction() as session:
        session["new_server_key_id"] = other.id
    assert other.key not in client.get(f"/environments/{env.id}").get_data(as_text=True)


def test_environment_page__client_key_copy_button__is_a_file_script(client, auth, world):
    _, env, _ = world
    auth.login("viewer@example.com")
    page = client.get(f"/environments/{env.id}").get_data(as_text=True)
    assert 'data-copy="#client-key"' in page
    assert "js/copy.js" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "an inline script"
