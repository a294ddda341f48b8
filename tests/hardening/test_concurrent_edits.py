"""Two editors saving the same object from stale pages: the second is refused, not lost.

Each scenario logs two editors in with separate test clients. Both open the page (and read
the version it carries, as the browser would send it), the first saves, then the second
saves from their stale page: they get a 409 whose partial says the object "has changed since
you opened it", the stored value stays the first editor's, and the audit log holds both
attempts (the refused one as ``update_rejected`` / ``delete_rejected``). The last test runs
two writers truly at once on PostgreSQL: exactly one of them wins.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select, text

from tests.factories import (
    identities_make_option,
    identities_make_override,
    identities_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import (
    AuditEvent,
    Environment,
    Feature,
    FeatureState,
    Identity,
    IdentityOverride,
    Segment,
    SegmentOverride,
    Trait,
    User,
)
from webapp.services.errors import Conflict
from webapp.services.identities import identity_overrides
from webapp.services.segments import definitions

# Database behaviour (version checks and row locks): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

HX = {"HX-Request": "true"}
CHANGED = "has changed since you opened it; reload to see the saved version."
OVERRIDE_CHANGED = "This override " + CHANGED


@dataclass
class World:
    env: Environment
    welcome: Feature  # string flag, "hello"
    colour: Feature  # multivariate: blue 30 %, orange 30 %
    segment: Segment
    segment_override: SegmentOverride  # Pro users get "pro hello"
    alice: Identity  # plan=free, overrides welcome with "alice's"
    override: IdentityOverride

    def identity_url(self, suffix: str = "") -> str:
        return f"/environments/{self.env.id}/identities/{self.alice.id}{suffix}"

    def features_url(self, suffix: str = "") -> str:
        return f"/environments/{self.env.id}/features{suffix}"

    def segment_url(self, suffix: str = "") -> str:
        return f"/environments/{self.env.id}/segments/{self.segment.id}{suffix}"


@pytest.fixture
def world(app: Flask) -> World:
    project = make_project("Demo")
    env = make_environment(project, "Production")
    for email in ("first@example.com", "second@example.com"):
        make_user(email, "editor", project)
    welcome = make_feature(project, "welcome", enabled=False, value="hello")
    colour = make_feature(project, "colour", enabled=True, value="green", type="MULTIVARIATE")
    identities_make_option(colour, "blue", 30.0)
    identities_make_option(colour, "orange", 30.0)
    segment = make_segment(project, "Pro users")
    segment_override = identities_make_segment_override(segment, welcome, env, True, "pro hello")
    alice = make_identity(env, "alice@acme.test", {"plan": "free"})
    override = identities_make_override(alice, welcome, True, "alice's")
    db.session.commit()
    return World(env, welcome, colour, segment, segment_override, alice, override)


class Browser(FlaskClient):
    """A test client that forgets the user Flask-Login cached on ``g``.

    The test's app context stays pushed across requests, so ``g`` (and its cached user) is
    shared by every client; each browser must load its own user from its session cookie.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        g.pop("_login_user", None)
        return super().open(*args, **kwargs)


@pytest.fixture
def editors(app: Flask, world: World) -> tuple[FlaskClient, FlaskClient]:
    """Two editors, each logged in with their own browser (test client)."""
    clients = []
    for email in ("first@example.com", "second@example.com"):
        client = Browser(app, app.response_class, use_cookies=True)
        response = client.post("/login", data={"email": email, "password": "password123"})
        assert response.status_code == 302
        clients.append(client)
    return clients[0], clients[1]


# ---- helpers ---------------------------------------------------------------------------
def _page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _element(html: str, element_id: str) -> str:
    """Return the markup from the element with this id to the end of its line block."""
    start = html.index(f'id="{element_id}"')
    end = html.find("</tr>", start)
    return html[start : end if end != -1 else None]


def _hidden_version(html: str) -> str:
    """The value of the first ``version`` input (what the form posts back)."""
    tag = re.search(r'<input[^>]*name="version"[^>]*>', html)
    assert tag is not None, "the page carries no version"
    found = re.search(r'value="([^"]*)"', tag.group(0))
    assert found is not None
    return found.group(1)


def _hx_vals_version(html: str) -> int:
    found = re.search(r"""hx-vals='\{"version": (\d+)\}'""", html)
    assert found is not None, "the row carries no version"
    return int(found.group(1))


def _audit(object_type: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.object_type == object_type).order_by(AuditEvent.id)
        )
    )


def _assert_refused(response: Any, root: str) -> str:
    """A 409 partial (htmx swaps it: see base.html) that shows the message inline."""
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert f'id="{root}"' in html and "<html" not in html
    assert CHANGED in html
    return html


def _assert_both_audited(object_type: str, rejected: str = "update_rejected") -> AuditEvent:
    events = _audit(object_type)
    assert [(e.action, e.actor_label) for e in events] == [
        (events[0].action, "first@example.com"),
        (rejected, "second@example.com"),
    ]
    assert events[0].action not in (rejected, "update_rejected", "delete_rejected")
    refused = events[1]
    assert refused.before is not None
    if rejected == "update_rejected":
        assert refused.after is not None and refused.after != refused.before
    else:
        assert refused.after is None
    return refused


# ---- segments --------------------------------------------------------------------------
def test_segment__second_save_from_stale_builder__409_first_kept_both_audited(editors, world):
    first, second = editors
    # Given both editors opened the rule builder
    pages = [_page(c, world.segment_url("/edit")) for c in editors]
    versions = [_hidden_version(p) for p in pages]
    data = {
        "match": "ALL",
        "groups-0-type": "ANY",
        "groups-0-conditions-0-property_": "plan",
        "groups-0-conditions-0-operator": "EQUAL",
        "groups-0-conditions-0-value": "pro",
    }
    # When both save
    saved = first.put(
        world.segment_url("/edit"),
        headers=HX,
        data={**data, "name": "First", "version": versions[0]},
    )
    refused = second.put(
        world.segment_url("/edit"),
        headers=HX,
        data={**data, "name": "Second", "version": versions[1]},
    )
    # Then the second gets the message inline, the first's name stays, both are audited
    assert saved.status_code == 200
    assert "This segment " + CHANGED in _assert_refused(refused, "builder-error")
    db.session.expire_all()
    assert db.session.get(Segment, world.segment.id).name == "First"
    _assert_both_audited("segment")


# ---- identity overrides (Identity page) ---------------------------------------------------
def test_identity_override__second_value_from_stale_editor__409_first_kept(editors, world):
    first, second = editors
    flag = world.identity_url(f"/flags/{world.welcome.id}")
    # Given both editors opened the override editor of welcome
    versions = [_hidden_version(_page(c, flag + "/edit")) for c in editors]
    # When both save a value
    saved = first.put(
        flag + "/override",
        headers=HX,
        data={"value": "first", "value_type": "string", "version": versions[0]},
    )
    refused = second.put(
        flag + "/override",
        headers=HX,
        data={"value": "second", "value_type": "string", "version": versions[1]},
    )
    # Then the second sees the saved row with the message, the first's value is stored
    assert saved.status_code == 200
    html = _assert_refused(refused, "flag-welcome")
    assert OVERRIDE_CHANGED in html and "first" in html
    db.session.expire_all()
    assert db.session.get(IdentityOverride, world.override.id).value == "first"
    refused_event = _assert_both_audited("identity_override")
    assert refused_event.after["value"] == "second" and refused_event.before["value"] == "first"


def test_identity_override__toggle_from_stale_row__409_and_unchanged(editors, world):
    first, second = editors
    # Given both editors have the Identity page open (the welcome row carries its version)
    rows = [_element(_page(c, world.identity_url()), "flag-welcome") for c in editors]
    versions = [_hx_vals_version(row) for row in rows]
    toggle = world.identity_url(f"/flags/{world.welcome.id}/toggle")
    # When both turn the override off
    saved = first.post(toggle, data={"version": versions[0]}, headers=HX)
    refused = second.post(toggle, data={"version": versions[1]}, headers=HX)
    # Then the second toggle (which would have turned it back on) is refused
    assert saved.status_code == 200
    assert OVERRIDE_CHANGED in _assert_refused(refused, "flag-welcome")
    db.session.expire_all()
    assert db.session.get(IdentityOverride, world.override.id).enabled is False
    _assert_both_audited("identity_override")


def test_identity_override__remove_from_stale_row__409_delete_rejected(editors, world):
    first, second = editors
    flag = world.identity_url(f"/flags/{world.welcome.id}")
    rows = [_element(_page(c, world.identity_url()), "flag-welcome") for c in editors]
    remove_url = re.search(r'hx-delete="([^"]+)"', rows[1]).group(1).replace("&amp;", "&")
    # Given the first editor changed the override's value
    version = _hx_vals_version(rows[0])
    saved = first.put(
        flag + "/override",
        headers=HX,
        data={"value": "first", "value_type": "string", "version": version},
    )
    # When the second removes it from their stale page
    refused = second.delete(remove_url, headers=HX)
    # Then the removal is refused and the first editor's override stays
    assert saved.status_code == 200
    assert OVERRIDE_CHANGED in _assert_refused(refused, "flag-welcome")
    db.session.expire_all()
    assert db.session.get(IdentityOverride, world.override.id).value == "first"
    _assert_both_audited("identity_override", "delete_rejected")


def test_identity_override__first_override_created_twice__second_refused(editors, world):
    first, second = editors
    # Given no override of colour for alice yet (the row shows version 0)
    rows = [_element(_page(c, world.identity_url()), "flag-colour") for c in editors]
    versions = [_hx_vals_version(row) for row in rows]
    assert versions == [0, 0]
    option = world.colour.options[0].id
    url = world.identity_url(f"/flags/{world.colour.id}/option")
    # When both pick an option
    saved = first.post(url, data={"option_id": option, "version": versions[0]}, headers=HX)
    refused = second.post(url, data={"option_id": option, "version": versions[1]}, headers=HX)
    # Then only the first creates the override
    assert saved.status_code == 200
    _assert_refused(refused, "flag-colour")
    db.session.expire_all()
    rows_now = db.session.scalars(
        select(IdentityOverride).where(IdentityOverride.feature_id == world.colour.id)
    ).all()
    assert len(rows_now) == 1 and rows_now[0].version == 1


def test_identity_override__remove_from_stale_feature_page__409_delete_rejected(editors, world):
    first, second = editors
    # Given the second editor has the feature page open with alice's override
    html = _page(second, world.features_url(f"/{world.welcome.id}"))
    remove_url = re.search(r'hx-delete="([^"]+identity-overrides[^"]+)"', html).group(1)
    # When the first editor changes the override on the Identity page
    flag = world.identity_url(f"/flags/{world.welcome.id}")
    version = _hidden_version(_page(first, flag + "/edit"))
    saved = first.put(
        flag + "/override",
        headers=HX,
        data={"value": "first", "value_type": "string", "version": version},
    )
    # And the second removes it from the stale feature page
    refused = second.delete(remove_url.replace("&amp;", "&"), headers=HX)
    # Then the removal is refused with the message in the list
    assert saved.status_code == 200
    assert OVERRIDE_CHANGED in _assert_refused(refused, "identity-overrides")
    db.session.expire_all()
    assert db.session.get(IdentityOverride, world.override.id).value == "first"
    _assert_both_audited("identity_override", "delete_rejected")


# ---- segment overrides -------------------------------------------------------------------
def test_segment_override__second_save_from_stale_tab__409_first_kept(editors, world):
    first, second = editors
    # Given both editors opened the segment's overrides tab
    pages = [_page(c, world.segment_url("?tab=overrides")) for c in editors]
    versions = [_hidden_version(_element(p, "override-welcome")) for p in pages]
    url = world.segment_url(f"/overrides/{world.segment_override.id}")
    # When both save a value
    saved = first.put(
        url,
        headers=HX,
        data={"enabled": "y", "value_type": "string", "value": "first", "version": versions[0]},
    )
    refused = second.put(
        url,
        headers=HX,
        data={"enabled": "y", "value_type": "string", "value": "second", "version": versions[1]},
    )
    # Then the second is refused inline, the first's value is stored, both are audited
    assert saved.status_code == 200
    assert OVERRIDE_CHANGED in _assert_refused(refused, "segment-overrides")
    db.session.expire_all()
    assert db.session.get(SegmentOverride, world.segment_override.id).value == "first"
    _assert_both_audited("segment_override")


def test_segment_override__delete_from_stale_tab__409_delete_rejected(editors, world):
    first, second = editors
    pages = [_page(c, world.segment_url("?tab=overrides")) for c in editors]
    version = _hidden_version(_element(pages[0], "override-welcome"))
    remove_url = re.search(r'hx-delete="([^"]+/overrides/[^"]+)"', pages[1]).group(1)
    url = world.segment_url(f"/overrides/{world.segment_override.id}")
    saved = first.put(
        url, headers=HX, data={"value_type": "string", "value": "first", "version": version}
    )
    refused = second.delete(remove_url.replace("&amp;", "&"), headers=HX)
    assert saved.status_code == 200
    assert OVERRIDE_CHANGED in _assert_refused(refused, "segment-overrides")
    db.session.expire_all()
    assert db.session.get(SegmentOverride, world.segment_override.id) is not None
    _assert_both_audited("segment_override", "delete_rejected")


# ---- feature states (features list) and allocations (feature page) -----------------------
def _state(feature: Feature, env: Environment) -> FeatureState:
    db.session.expire_all()
    return db.session.scalars(
        select(FeatureState).where(
            FeatureState.feature_id == feature.id, FeatureState.environment_id == env.id
        )
    ).one()


def test_feature_state__value_from_stale_editor__409_first_kept(editors, world):
    first, second = editors
    url = world.features_url(f"/{world.welcome.id}/value")
    versions = [_hidden_version(_page(c, url + "/edit")) for c in editors]
    saved = first.put(
        url, headers=HX, data={"value_kind": "string", "value": "first", "version": versions[0]}
    )
    refused = second.put(
        url, headers=HX, data={"value_kind": "string", "value": "second", "version": versions[1]}
    )
    assert saved.status_code == 200
    assert "This flag " + CHANGED in _assert_refused(refused, f"feature-{world.welcome.id}")
    assert _state(world.welcome, world.env).value == "first"
    _assert_both_audited("feature_state")


def test_feature_state__toggle_from_stale_list__409_and_unchanged(editors, world):
    first, second = editors
    # Given both editors have the features list open
    rows = [
        _element(_page(c, world.features_url()), f"feature-{world.welcome.id}") for c in editors
    ]
    versions = [_hidden_version(row) for row in rows]
    # When the first changes the value and the second then switches the flag on
    saved = first.put(
        world.features_url(f"/{world.welcome.id}/value"),
        headers=HX,
        data={"value_kind": "string", "value": "first", "version": versions[0]},
    )
    refused = second.post(
        world.features_url(f"/{world.welcome.id}/enabled"),
        headers=HX,
        data={"enabled": "true", "version": versions[1]},
    )
    # Then the toggle is refused: the flag stays off with the first editor's value
    assert saved.status_code == 200
    _assert_refused(refused, f"feature-{world.welcome.id}")
    state = _state(world.welcome, world.env)
    assert (state.enabled, state.value) == (False, "first")
    _assert_both_audited("feature_state")


def test_feature_state__same_toggle_twice_from_one_page__no_conflict(editors, world):
    # Setting (not flipping) stays idempotent: a double click is no conflict.
    first, _ = editors
    row = _element(_page(first, world.features_url()), f"feature-{world.welcome.id}")
    version = _hidden_version(row)
    url = world.features_url(f"/{world.welcome.id}/enabled")
    responses = [
        first.post(url, data={"enabled": "true", "version": version}, headers=HX) for _ in range(2)
    ]
    assert [r.status_code for r in responses] == [200, 200]
    assert [e.action for e in _audit("feature_state")] == ["update"]


def test_allocations__second_save_from_stale_page__409_first_kept(editors, world):
    first, second = editors
    pages = [_page(c, world.features_url(f"/{world.colour.id}")) for c in editors]
    versions = [_hidden_version(_element(p, "allocations-form")) for p in pages]
    blue, orange = (o.id for o in world.colour.options)

    def data(percentages: tuple[str, str], version: str) -> dict[str, str]:
        return {
            "allocations-0-option_id": str(blue),
            "allocations-0-percentage": percentages[0],
            "allocations-1-option_id": str(orange),
            "allocations-1-percentage": percentages[1],
            "version": version,
        }

    url = world.features_url(f"/{world.colour.id}/allocations")
    saved = first.put(url, data=data(("50", "50"), versions[0]), headers=HX)
    refused = second.put(url, data=data(("10", "10"), versions[1]), headers=HX)
    assert saved.status_code == 200
    assert "This flag " + CHANGED in _assert_refused(refused, "feature-options")
    allocations = {a.option_id: a.percentage for a in _state(world.colour, world.env).allocations}
    assert allocations == {blue: 50.0, orange: 50.0}
    _assert_both_audited("feature_state")


# ---- traits ------------------------------------------------------------------------------
def test_trait__second_inline_edit_from_stale_form__409_first_kept(editors, world):
    first, second = editors
    url = world.identity_url("/traits/plan")
    versions = [_hidden_version(_page(c, url + "/edit")) for c in editors]
    saved = first.put(
        url, headers=HX, data={"value": "pro", "value_type": "string", "version": versions[0]}
    )
    refused = second.put(
        url, headers=HX, data={"value": "team", "value_type": "string", "version": versions[1]}
    )
    assert saved.status_code == 200
    assert "This trait " + CHANGED in _assert_refused(refused, "trait-plan")
    db.session.expire_all()
    trait = db.session.scalars(select(Trait).where(Trait.key == "plan")).one()
    assert trait.value == "pro"
    _assert_both_audited("trait")


def test_trait__sdk_rewrite_with_same_value__is_no_conflict(app, editors, world):
    # SDKs re-send traits all the time; only a different type or value makes a page stale.
    first, _ = editors
    url = world.identity_url("/traits/plan")
    version = _hidden_version(_page(first, url + "/edit"))
    sdk = app.test_client().post(
        "/api/v1/identities/",
        json={
            "identifier": world.alice.identifier,
            "traits": [{"trait_key": "plan", "trait_value": "free"}],
        },
        headers={"X-Environment-Key": world.env.client_key},
    )
    assert sdk.status_code == 200
    saved = first.put(
        url, headers=HX, data={"value": "pro", "value_type": "string", "version": version}
    )
    assert saved.status_code == 200


# ---- old pages without a version ---------------------------------------------------------
def test_override_change__form_without_version__422_and_nothing_saved(editors, world):
    first, _ = editors
    response = first.put(
        world.identity_url(f"/flags/{world.welcome.id}/override"),
        headers=HX,
        data={"value": "blind", "value_type": "string"},
    )
    assert response.status_code == 422 and "reload" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(IdentityOverride, world.override.id).value == "alice's"
    assert _audit("identity_override") == []


# ---- true concurrency (PostgreSQL) -------------------------------------------------------
# Only PostgreSQL: SQLite has one writer at a time, so there is no race to lose there. The
# module's choice of databases is narrowed to it (it still skips, or fails in CI, without one).
POSTGRES_ONLY = pytest.mark.databases("postgres")


@POSTGRES_ONLY
@pytest.mark.parametrize("existing", [True, False], ids=["update", "create"])
def test_set_override_value__two_writers_at_once__exactly_one_wins(
    app, world, monkeypatch, existing
):
    # Given an override at version 1 (or none yet: version 0), seen by two writers
    feature = world.welcome if existing else world.colour
    version = 1 if existing else 0
    ids = {
        "identity": world.alice.id,
        "feature": feature.id,
        "users": [
            db.session.scalars(select(User.id).where(User.email == email)).one()
            for email in ("first@example.com", "second@example.com")
        ],
    }
    db.session.commit()

    def write(user_id: int, value: str) -> Any:
        actor = db.session.get(User, user_id)
        identity = db.session.get(Identity, ids["identity"])
        target = db.session.get(Feature, ids["feature"])
        db.session.commit()
        yield
        identity_overrides.set_override_value(actor, identity, target, value, utcnow(), None,
                                     version=version)  # fmt: skip

    results = _two_at_once(app, monkeypatch, identity_overrides.revisions, "bump_environment",
                           write, zip(ids["users"], ("one", "two"), strict=True))  # fmt: skip
    # Then exactly one was saved, the other refused, and the stored value is the winner's
    assert sorted(outcome for outcome, _ in results) == ["refused", "saved"], results
    winner = next(value for outcome, value in results if outcome == "saved")
    db.session.expire_all()
    row = db.session.scalars(
        select(IdentityOverride).where(
            IdentityOverride.identity_id == ids["identity"],
            IdentityOverride.feature_id == ids["feature"],
        )
    ).one()
    assert (row.value, row.version) == (winner, version + 1)
    actions = sorted(e.action for e in _audit("identity_override"))
    assert actions == ["update", "update_rejected"]


def _until_another_connection_waits_on_a_lock(done: list[Any], seconds: float = 20) -> None:
    """Return once a connection of this test process waits on a lock in PostgreSQL (the
    other writer, blocked by this one's transaction), or once ``done`` is not empty."""
    deadline = time.monotonic() + seconds
    with db.engine.connect() as watcher:
        while not done and time.monotonic() < deadline:
            waiting = watcher.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND application_name = current_setting('application_name')"))  # fmt: skip
            if waiting:
                return
            time.sleep(0.005)


def _two_at_once(app, monkeypatch, module, bump, write, arguments) -> list[tuple[str, str]]:
    """Run two writers at once, each in its own app context (and connection).

    ``write(*args)`` is a generator: it loads what it needs, yields, then writes once both
    have loaded. The first writer to reach ``module.<bump>`` lingers inside its transaction
    until the other waits on a lock (or is done), so the other has certainly read the version
    by then: without a row lock both would pass the version check and the last write would
    silently win.
    :return: ("saved" | "refused" | "error", value) per writer
    """
    lingered = threading.Lock()
    real = getattr(module, bump)

    results: list[tuple[str, str]] = []

    def slow(*args: Any) -> None:
        real(*args)
        if lingered.acquire(blocking=False):
            _until_another_connection_waits_on_a_lock(results)

    monkeypatch.setattr(module, bump, slow)
    start = threading.Barrier(2, timeout=20)

    def run(*args: Any) -> None:
        with app.app_context():
            steps = write(*args)
            next(steps)
            start.wait()
            try:
                next(steps, None)
                results.append(("saved", args[-1]))
            except Conflict:
                results.append(("refused", args[-1]))
            except Exception as exc:  # pragma: no cover - reported by the caller's assertion
                results.append(("error", repr(exc)))

    threads = [threading.Thread(target=run, args=tuple(a)) for a in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@POSTGRES_ONLY
def test_update_segment__two_saves_from_the_same_version_at_once__exactly_one_wins(
    app, world, monkeypatch
):
    # Given a segment at some version, opened by two editors
    users = [db.session.scalars(select(User.id).where(User.email == email)).one()
             for email in ("first@example.com", "second@example.com")]  # fmt: skip
    segment_id, version, rules = world.segment.id, world.segment.version, world.segment.rules
    db.session.commit()

    def save(user_id: int, description: str) -> Any:
        actor = db.session.get(User, user_id)
        segment = db.session.get(Segment, segment_id)
        db.session.commit()
        yield
        definitions.update_segment(segment, actor, name=segment.name, description=description,
                                rules=rules, version=version)  # fmt: skip

    # When both save at once
    results = _two_at_once(app, monkeypatch, definitions.revisions, "bump_project", save,
                           zip(users, ("by first", "by second"), strict=True))  # fmt: skip
    # Then exactly one was saved (one version step), the other refused, both audited
    assert sorted(outcome for outcome, _ in results) == ["refused", "saved"], results
    winner = next(value for outcome, value in results if outcome == "saved")
    db.session.expire_all()
    stored = db.session.get(Segment, segment_id)
    assert (stored.description, stored.version) == (winner, version + 1)
    assert sorted(e.action for e in _audit("segment")) == ["update", "update_rejected"]
