"""Row locks for the optimistic version checks of dashboard edits."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import InvalidRequestError

from ..extensions import db
from .errors import NotFound


def relock(row: Any, missing: str) -> None:
    """Re-read a loaded row ``FOR UPDATE`` before its version is compared.

    A concurrent change of the same row waits here, then sees the committed version, so of
    two saves from one page only one passes (a no-op on SQLite, which has one writer).

    :param missing: the message when the row was deleted meanwhile
    :raises NotFound: when the row is gone
    """
    try:
        db.session.refresh(row, with_for_update=True)
    except InvalidRequestError:  # refresh finds no row: deleted meanwhile
        raise NotFound(missing) from None


IDENTITY_GONE = "No such identity: it does not exist in this environment."


def lock_identity(identity: Any) -> None:
    """Lock an identity's row before changing its traits, overrides or links.

    An erasure holding it (identities/erase.py) finishes first; the change then finds the
    identity gone and is refused with the page's usual message, instead of failing on a
    foreign key (a 500) when it inserts a row for an identity that no longer exists.

    :raises NotFound: when the identity was erased or deleted meanwhile
    """
    relock(identity, IDENTITY_GONE)
