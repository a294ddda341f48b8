"""Hypothesis profiles, registered in one place and chosen with ``HYPOTHESIS_PROFILE``.

- ``ci`` (the default, and what ``make test`` uses): every property test draws the number
  of examples it names with ``examples(n)`` (2,000 in the differential test), or more.
- ``dev`` (``make test-quick``): a twentieth of that, at least 10 each, for the local loop.

Both keep a local example database in ``.hypothesis/examples`` (git-ignored): an example
that failed once is tried first on the next run, so a failure seen once replays. A failure
also prints its ``@reproduce_failure`` blob, to replay it on another machine.
"""

from __future__ import annotations

import os

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

EXAMPLE_DATABASE = DirectoryBasedExampleDatabase(".hypothesis/examples")
# The share of each test's example count that a profile draws.
SCALE = {"ci": 1.0, "dev": 0.05}
DEV_MINIMUM = 10

settings.register_profile(
    "ci", deadline=None, print_blob=True, database=EXAMPLE_DATABASE
)
settings.register_profile(
    "dev", deadline=None, print_blob=True, database=EXAMPLE_DATABASE, max_examples=DEV_MINIMUM
)


def load() -> str:
    """Load the profile named by ``HYPOTHESIS_PROFILE`` (default ``ci``); return its name."""
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    if name not in SCALE:
        raise ValueError(f"HYPOTHESIS_PROFILE={name!r}: expected one of {sorted(SCALE)}")
    settings.load_profile(name)
    return name


def examples(ci_count: int) -> int:
    """The number of examples to draw under the loaded profile for a test that wants
    ``ci_count`` in CI."""
    scale = SCALE.get(settings.get_current_profile_name(), 1.0)
    if scale >= 1.0:
        return ci_count
    return max(DEV_MINIMUM, round(ci_count * scale))
