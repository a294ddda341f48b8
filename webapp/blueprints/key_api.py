"""What the key-authenticated APIs (``sdk_api`` and ``ofrep``) share.

Both answer in JSON encoded by orjson and authenticate by environment key against this
worker's snapshot cache; each keeps its own protocol's error shape and key header.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, g

from ..services.sdk.key_usage import app_usage
from ..services.sdk.snapshots import SnapshotCache, app_cache


def json_response(payload: Any, status: int = 200) -> Response:
    """Encode with orjson (fast, and strict about what it emits)."""
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


def snapshot_cache() -> SnapshotCache:
    """Return this worker's snapshot cache."""
    return app_cache()


def authenticate_key(key: str | None) -> bool:
    """Resolve an environment key into ``g.key_info`` and ``g.bundle``; False if it grants nothing.

    Missing, malformed, unknown and revoked keys all grant nothing. A server key's use is
    noted (written at most once a minute per key and worker, ``key_usage.py``).
    """
    resolved = snapshot_cache().resolve(key)
    if resolved is None:
        return False
    g.key_info, g.bundle = resolved
    if g.key_info.is_server:
        app_usage().touch(key or "")
    return True
