"""Page stream tokens: which user may watch which environment, signed with SECRET_KEY.

A page embeds the token in its stream URL, so no cookie has to cross from the dashboard's
origin to the stream server's. The stream server checks the signature and age, then that
the user still has a role on the environment's project (store.may_watch).
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadData, URLSafeTimedSerializer

SALT = "flagpost-page-stream"


@dataclass(frozen=True, slots=True)
class PageGrant:
    """What a valid token grants: one user watching one environment since a revision."""

    user_id: int
    environment_id: int
    revision: int


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def sign(secret_key: str, user_id: int, environment_id: int, revision: int) -> str:
    """Return a token for ``user_id`` watching ``environment_id`` (rendered at ``revision``)."""
    return _serializer(secret_key).dumps([user_id, environment_id, revision])


def verify(secret_key: str, token: str, max_age: int) -> PageGrant | None:
    """Return the token's grant, or None when it is forged, malformed or too old."""
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age)
    except BadData:
        return None
    if not isinstance(data, list) or len(data) != 3 or not all(type(part) is int for part in data):
        return None
    return PageGrant(data[0], data[1], data[2])
