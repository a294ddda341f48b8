"""Flag usage: recording evaluations (SDK analytics and remote evaluation), and reading them.

- ``recorder``: the per-worker buffer, flushed in batches off the request path; ``states``:
  the daily rollup of the states identities got; ``upserts``: their batched upserts.
- ``ingest``: the SDK analytics batch (``POST /api/v1/analytics/flags/``).
- ``reports``: charts, totals, stale flags and an identity's "seen" rows for the pages.
- ``retention``: ``flask prune-analytics``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from flask import current_app

from ...evaluation import FlagResult
from ...extensions import db
from ..sdk.snapshots import EnvironmentBundle, FeatureMeta
from .recorder import UsageBuffer

EXTENSION = "flagpost_usage"


def app_buffer() -> UsageBuffer | None:
    """Return this worker's usage buffer, or None when recording is off (``USAGE_RECORDING``).

    The buffer is per app, like the snapshot cache: infrastructure, so it reads current_app.
    """
    extensions = current_app.extensions
    if EXTENSION not in extensions:
        config = current_app.config
        extensions[EXTENSION] = (
            UsageBuffer(
                db.engine,
                config.get("USAGE_FLUSH_INTERVAL"),
                config.get("USAGE_BUFFER_MAX", 10_000),
            )
            if config.get("USAGE_RECORDING", True)
            else None
        )
    buffer: UsageBuffer | None = extensions[EXTENSION]
    return buffer


def record_served(
    bundle: EnvironmentBundle,
    flags: Mapping[str, FlagResult],
    is_server: bool,
    identity_id: int | None,
    now: datetime,
) -> None:
    """Count a flags/identify response: one evaluation of each flag it returned.

    For a stored identity the response is also what it saw (value and variant, per feature).
    """
    buffer = app_buffer()
    if buffer is None:
        return
    served: Sequence[FeatureMeta] = bundle.features if is_server else bundle.client_features
    if bundle.hide_disabled_flags or len(flags) < len(served):
        found = flags.get
        served = tuple(
            meta for meta in served
            if (result := found(meta.name)) is not None
            and (result.enabled or not bundle.hide_disabled_flags)
        )  # fmt: skip
    buffer.add_response(bundle.environment_id, identity_id, served, flags, now)


def record_evaluated(
    bundle: EnvironmentBundle, names: Iterable[str], is_server: bool, now: datetime
) -> None:
    """Count one evaluation of each named flag (OFREP answers: no stored identity)."""
    buffer = app_buffer()
    if buffer is None:
        return
    ids = bundle.feature_ids(is_server)
    counts = {ids[name]: 1 for name in names if name in ids}
    if counts:
        buffer.add_counts(bundle.environment_id, counts, now)


def flush() -> None:
    """Write this worker's buffered usage now (tests, the CLI, the bench)."""
    buffer = app_buffer()
    if buffer is not None:
        buffer.flush()


__all__ = ["app_buffer", "flush", "record_evaluated", "record_served"]
