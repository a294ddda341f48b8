"""The last-admin rule under true concurrency: two organisation admins disabling (or
demoting) each other at the same moment cannot leave the organisation without an admin."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.factories import make_user
from webapp.extensions import db
from webapp.models import User
from webapp.services import people
from webapp.services.errors import Conflict

# True concurrency needs a server with row locks: PostgreSQL only.
pytestmark = pytest.mark.databases("postgres")


def _until_another_connection_waits(done: list[Any], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    with db.engine.connect() as watcher:
        while not done and time.monotonic() < deadline:
            waiting = watcher.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND application_name = current_setting('application_name')"))  # fmt: skip
            if waiting:
                return
            time.sleep(0.005)


def _at_once(app, monkeypatch, change: Callable[[User, int], Any], pairs) -> list[str]:
    """Run ``change(actor, target_id)`` for both pairs at once; the first to pass the admin
    check lingers in its transaction until the other waits on a lock."""
    real = people._keep_an_admin
    lingered = threading.Lock()
    results: list[str] = []

    def slow(user: User) -> None:
        real(user)
        if lingered.acquire(blocking=False):
            _until_another_connection_waits(results)

    monkeypatch.setattr(people, "_keep_an_admin", slow)
    start = threading.Barrier(2, timeout=20)

    def run(actor_id: int, target_id: int) -> None:
        with app.app_context():
            actor = db.session.get(User, actor_id)
            db.session.commit()
            start.wait()
            try:
                change(actor, target_id)
                results.append("saved")
            except Conflict:
                results.append("refused")
            except Exception as exc:  # pragma: no cover - shown by the assertion
                results.append(repr(exc))

    threads = [threading.Thread(target=run, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize(
    "change",
    [
        lambda actor, target: people.set_enabled(actor, target, False),
        lambda actor, target: people.set_roles(actor, target, {None: "viewer"}),
    ],
    ids=["disable", "demote"],
)
def test_two_org_admins__removing_each_other_at_once__one_admin_remains(app, monkeypatch, change):
    # Given exactly two organisation admins
    first = make_user("first@example.com", "admin", all_projects=True)
    second = make_user("second@example.com", "admin", all_projects=True)
    db.session.commit()
    ids = (first.id, second.id)

    # When each removes the other at the same moment
    results = _at_once(app, monkeypatch, change, [ids, ids[::-1]])

    # Then one is refused, and one enabled organisation admin remains
    assert sorted(results) == ["refused", "saved"], results
    db.session.expire_all()
    users = db.session.scalars(select(User).where(User.id.in_(ids))).all()
    admins = [u for u in users if u.active and people.is_org_admin(u)]
    assert len(admins) == 1
