"""Live pages: which pages get a stream URL, and what its token grants."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.web.identities.conftest import build_world
from webapp.extensions import db
from webapp.realtime import tokens

pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def app_config():
    return {"STREAM_URL": "https://streams.example.com/"}


@pytest.fixture
def world(app):
    built = build_world()
    db.session.commit()
    return built


def _stream_url(html: str) -> str | None:
    found = re.search(r'sse-connect="([^"]+)"', html)
    return unescape(found.group(1)) if found else None


LIVE_PAGES = [
    "/environments/{env}/identities/{alice}",
    "/environments/{env}/users",
    "/environments/{env}/segments",
    "/environments/{env}/features",
]


@pytest.mark.parametrize("path", LIVE_PAGES)
def test_live_page__signed_in_viewer__gets_a_stream_url_with_a_token_for_them(
    app, client, auth, world, path
):
    # Given a viewer on one of the live pages
    auth.login("viewer@example.com")
    response = client.get(path.format(env=world.environment.id, alice=world.alice.id))
    assert response.status_code == 200
    url = _stream_url(response.get_data(as_text=True))
    # Then the page streams from the configured server, for this environment
    assert url is not None
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https", "streams.example.com", f"/sse/pages/environments/{world.environment.id}/stream"
    )  # fmt: skip
    # and its token names the viewer, the environment and the revision the page showed
    token = parse_qs(parts.query)["token"][0]
    grant = tokens.verify(app.config["SECRET_KEY"], token, max_age=60)
    viewer_id = next(u.id for u in _users() if u.email == "viewer@example.com")
    assert grant == tokens.PageGrant(viewer_id, world.environment.id, world.environment.revision)
    # and the CSP lets the page connect there
    assert (
        "connect-src 'self' https://streams.example.com;"
        in response.headers["Content-Security-Policy"]
    )


def _users():
    from webapp.models import User

    return db.session.query(User).all()


@pytest.mark.parametrize("path", ["/environments/{env}/audit", "/"])
def test_other_pages__have_no_stream(client, auth, world, path):
    auth.login("viewer@example.com")
    response = client.get(path.format(env=world.environment.id), follow_redirects=True)
    assert response.status_code == 200
    assert _stream_url(response.get_data(as_text=True)) is None


def test_live_page__anonymous__is_sent_to_login_without_a_stream(client, world):
    response = client.get(f"/environments/{world.environment.id}/users")
    assert response.status_code in (302, 401)
    assert _stream_url(response.get_data(as_text=True)) is None
