"""The SDK analytics batch: ``{"feature_name": evaluations, ...}`` every 10 s per SDK.

Flagsmith ignores names it does not know (an SDK may still count a deleted flag), and so
does Flagpost; anything that is not a count is refused whole with 400, so a bad batch
changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..sdk.parsing import BadRequest
from ..sdk.snapshots import EnvironmentBundle
from . import app_buffer

# An SDK sends one entry per feature it evaluated: far fewer than this.
MAX_FEATURES = 1000
# Evaluations one SDK may report per feature and batch (10 s): a billion is 100 M/s.
MAX_COUNT = 1_000_000_000
FEATURE_NAME_MAX = 150


def parse_counts(raw: Any) -> dict[str, int]:
    """Check an analytics batch: an object of feature names to non-negative integer counts.

    :raises BadRequest: naming the first offending entry.
    """
    if not isinstance(raw, dict):
        raise BadRequest("Expected a JSON object of feature names to evaluation counts")
    if len(raw) > MAX_FEATURES:
        raise BadRequest(f"At most {MAX_FEATURES} features per batch")
    counts: dict[str, int] = {}
    for name, count in raw.items():
        shown = name[:60]
        if not name or len(name) > FEATURE_NAME_MAX:
            raise BadRequest(f"Feature names have 1 to {FEATURE_NAME_MAX} characters")
        # bool is an int in Python; JSON true is not a count.
        if isinstance(count, bool) or not isinstance(count, int):
            raise BadRequest(f"{shown}: the count must be an integer")
        if not 0 <= count <= MAX_COUNT:
            raise BadRequest(f"{shown}: the count must lie between 0 and {MAX_COUNT}")
        counts[name] = count
    return counts


def ingest_counts(bundle: EnvironmentBundle, is_server: bool, raw: Any, now: datetime) -> int:
    """Record an SDK's analytics batch; unknown or invisible feature names are ignored.

    :return: how many features were counted.
    :raises BadRequest: when the batch is not an object of valid counts.
    """
    counts = parse_counts(raw)
    ids = bundle.feature_ids(is_server)
    known = {ids[name]: count for name, count in counts.items() if name in ids and count}
    buffer = app_buffer()
    if buffer is not None and known:
        buffer.add_counts(bundle.environment_id, known, now)
    return len(known)
