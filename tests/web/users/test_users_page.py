"""The Users page: full page vs htmx partial, search, columns, roles."""

from __future__ import annotations

import html
import re

import pytest

from tests.web.users.conftest import HX, table_counts
from webapp.extensions import db
from webapp.models import User

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


def test_index__full_page__lists_identities_with_links_and_counts(client, auth, world):
    # Given a viewer
    auth.login("viewer@example.com")
    # When the page is loaded without htmx
    response = client.get(world.url)
    # Then it is a full page with the search box, the table and every identity
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" in body and 'id="user-search"' in body and 'id="users-table"' in body
    for identifier in ("alice@acme.com", "bob@acme.com", "carol@other.org", "dave"):
        assert identifier in body
    assert 'id="users-count"' in body and "Counting identities" in body
    assert "HX-Request" in response.headers.get("Vary", "")


def _count_url(body: str) -> str:
    found = re.search(r'id="users-count"[^>]*hx-get="([^"]+)"', body)
    assert found, "the results should load their count by a separate request"
    return html.unescape(found.group(1))


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", "<strong>4</strong> identities"), ("plan = pro", "<strong>2</strong> identities match"),
     ('"dave"', "<strong>1</strong> identity match"), ("nobody", "<strong>0</strong> identities")],
)
def test_count__from_results_placeholder__counts_the_same_search(
    client, auth, world, query, expected
):
    # Given the results of a search, whose total is loaded separately
    auth.login("viewer@example.com")
    body = client.get(world.url, query_string={"q": query}, headers=HX).get_data(as_text=True)
    # When htmx follows the placeholder's URL
    response = client.get(_count_url(body), headers=HX)
    # Then the count of exactly that search comes back as the count partial
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert text.lstrip().startswith('<p class="users-count" id="users-count">')
    assert expected in " ".join(text.split())


def test_count__malformed_query__is_422_with_message(client, auth, world):
    auth.login("viewer@example.com")
    response = client.get(world.url + "/count", query_string={"q": "age >"}, headers=HX)
    assert response.status_code == 422
    assert response.get_data(as_text=True).strip()


def test_index__htmx_request__returns_results_partial(client, auth, world):
    # Given a viewer
    auth.login("viewer@example.com")
    # When htmx asks for the results
    response = client.get(world.url, query_string={"q": "plan = pro"}, headers=HX)
    # Then only the results partial comes back, with Vary
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="users-results"')
    assert "<html" not in body
    assert "HX-Request" in response.headers["Vary"]
    assert "alice@acme.com" in body and "carol@other.org" in body
    assert "bob@acme.com" not in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("alice", {"alice@acme.com"}),
        ('"bob@acme.com"', {"bob@acme.com"}),
        ('"bob"', set()),
        ("~ACME", {"alice@acme.com", "bob@acme.com"}),
        ("age > 30", {"alice@acme.com", "carol@other.org"}),
        ("plan = pro and age >= 41", {"carol@other.org"}),
        ("country in (DE, FR)", {"alice@acme.com", "bob@acme.com"}),
        ("beta is set", {"carol@other.org"}),
        ("beta = true", {"carol@other.org"}),
        ("code = 7", {"dave"}),
        ("plan != pro", {"bob@acme.com"}),
    ],
)
def test_index__search__shows_only_matching_rows(client, auth, world, query, expected):
    # Given a viewer
    auth.login("viewer@example.com")
    # When searching
    body = client.get(world.url, query_string={"q": query}, headers=HX).get_data(as_text=True)
    # Then exactly the expected identities are listed
    shown = {i for i in ("alice@acme.com", "bob@acme.com", "carol@other.org", "dave") if i in body}
    assert shown == expected


def test_index__has_overrides_filter__keeps_identities_with_overrides(client, auth, world):
    auth.login("viewer@example.com")
    body = client.get(world.url, query_string={"has_overrides": "1"}, headers=HX).get_data(
        as_text=True
    )
    assert "carol@other.org" in body and "alice@acme.com" not in body


@pytest.mark.parametrize("htmx", [True, False])
def test_index__malformed_query__is_422_with_inline_message(client, auth, world, htmx):
    # Given a viewer
    auth.login("viewer@example.com")
    # When the query cannot be parsed
    response = client.get(world.url, query_string={"q": "age > lots"}, headers=HX if htmx else {})
    # Then the answer is a 422 carrying the message inline (partial for htmx, page otherwise)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="search-error"' in body and "is not one" in body
    assert ("<html" in body) is (not htmx)


@pytest.mark.parametrize(
    "payload",
    [
        "' OR 1=1 --",
        "plan = x'; DROP TABLE traits; --",
        'plan = "x\'; DROP TABLE traits; --"',
        '" OR ""="',
        "plan = pro; DELETE FROM identities",
        "1) UNION SELECT * FROM users --",
        "%' AND 1=1 --",
        "~%",
        "~_",
    ],
)
def test_index__sql_injection_in_query__is_clean_and_tables_intact(client, auth, world, payload):
    # Given the data before
    auth.login("viewer@example.com")
    before = table_counts()
    # When a hostile query is searched
    response = client.get(world.url, query_string={"q": payload}, headers=HX)
    # Then the answer is a clean 200 or 422 and nothing changed
    assert response.status_code in (200, 422)
    db.session.expire_all()
    assert table_counts() == before
    body = response.get_data(as_text=True)
    assert "alice@acme.com" not in body or payload.startswith("~")


@pytest.mark.parametrize(
    "sort",
    ["identifier; DROP TABLE identities", "id desc", "(select 1)", "-created,1", "", "created"],
)
def test_index__hostile_sort__falls_back_cleanly(client, auth, world, sort):
    auth.login("viewer@example.com")
    before = table_counts()
    response = client.get(world.url, query_string={"sort": sort, "after": "';--"}, headers=HX)
    assert response.status_code == 200
    db.session.expire_all()
    assert table_counts() == before
    assert response.get_data(as_text=True).count('<tr id="identity-') == 4


def test_index__pagination__next_and_previous_links_walk_pages(client, auth, world, app):
    # Given more identities than fit on a page
    from tests.factories import make_identity

    for i in range(60):
        make_identity(world.environment, f"zz-{i:03d}")
    db.session.commit()
    auth.login("viewer@example.com")
    # When following the next link
    first = client.get(world.url, headers=HX).get_data(as_text=True)
    assert 'id="page-next"' in first and 'id="page-prev"' not in first
    next_url = first.split('id="page-next" hx-get="')[1].split('"')[0].replace("&amp;", "&")
    second = client.get(next_url, headers=HX).get_data(as_text=True)
    # Then the second page holds the rest and links back
    assert second.count('<tr id="identity-') == 14
    assert 'id="page-prev"' in second and 'id="page-next"' not in second


def test_index__viewer__sees_no_edit_controls(client, auth, world):
    auth.login("viewer@example.com")
    body = client.get(world.url).get_data(as_text=True)
    assert 'id="create-identities"' not in body
    assert 'id="bulk-panel"' not in body
    assert "hx-delete" not in body


def test_index__editor__sees_edit_controls_and_delete_confirm(client, auth, world):
    auth.login("editor@example.com")
    body = client.get(world.url).get_data(as_text=True)
    assert 'id="create-identities"' in body and 'id="bulk-panel"' in body
    assert "Its 3 traits and 1 override are lost." in body


def test_index__outsider__is_404(client, auth, world):
    from tests.factories import make_project, make_user

    make_user("outsider@example.com", "admin", make_project("Other"))
    db.session.commit()
    auth.login("outsider@example.com")
    assert client.get(world.url).status_code == 404


def test_index__trait_columns__show_chosen_values(client, auth, world):
    # Given a viewer who chose the "country" column
    auth.login("viewer@example.com")
    response = client.post(f"{world.url}/columns", data={"columns": ["country"]}, headers=HX)
    assert response.status_code == 200
    assert "identities-changed" in response.headers["HX-Trigger"]
    # When the page loads
    body = client.get(world.url, headers=HX).get_data(as_text=True)
    # Then the column is there with values, and the choice is remembered per environment
    assert '<th class="trait-col">country</th>' in body and ">DE</td>" in body
    assert '<th class="trait-col">plan</th>' not in body
    user = db.session.query(User).filter_by(email="viewer@example.com").one()
    assert user.preferences["trait_columns"] == {str(world.environment.id): ["country"]}


def test_save_columns__too_many__is_422_and_keeps_preference(client, auth, world):
    auth.login("viewer@example.com")
    keys = [f"k{i}" for i in range(9)]
    response = client.post(f"{world.url}/columns", data={"columns": keys}, headers=HX)
    assert response.status_code == 422
    user = db.session.query(User).filter_by(email="viewer@example.com").one()
    assert "trait_columns" not in (user.preferences or {})


def test_save_columns__plain_post__redirects_to_page(client, auth, world):
    auth.login("viewer@example.com")
    response = client.post(f"{world.url}/columns", data={"columns": ["plan"]})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(world.url)


def test_index__identity_link__points_to_identity_page(client, auth, world):
    auth.login("viewer@example.com")
    body = client.get(world.url).get_data(as_text=True)
    assert 'class="identity-link"' in body
    assert f"/environments/{world.environment.id}/identities/" in body
