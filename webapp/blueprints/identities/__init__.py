"""The Identity page (flags, why, traits, segments, history) and the QA flow.

The views live in submodules that register themselves on ``bp``: ``pages`` (the page and
its read-only partials), ``overrides`` (override actions and undo), ``traits`` (the traits
card and inline trait editing), ``erasure`` (erase the identity) and ``links``
("This is me", My identities and its reset);
``common`` holds the URL rules and helpers they share.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ...services.identities.identity_overrides import describe_state
from ...services.identities.traits import trait_version

bp = Blueprint("identities", __name__)


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    return {
        "describe_override": describe_state,
        "trait_version": trait_version,
        "inf": float("inf"),
    }



# Deliberately below ``bp``: the view modules decorate it, so they can only be imported once
# it exists (Flask's blueprint-package pattern); importing them registers the views. Not
# sorted on purpose: this keeps the single module's rule order, which decides the endpoint an
# automatic OPTIONS request to a shared path (trait row/update/delete, override put/delete)
# is matched to.
from . import pages, overrides, traits, links, erasure  # noqa: E402, F401  # isort: skip
