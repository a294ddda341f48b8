"""Features page: list with inline toggle/value, create/edit/delete, options, priorities.

The views live in submodules that register themselves on ``bp``: ``listing`` (the list and
its inline toggle/value editor), ``editing`` (create, edit, delete), ``detail`` (the detail
page, segment override priorities, identity overrides) and ``options`` (multivariate options
and allocations); ``common`` holds the helpers they share.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("features", __name__, url_prefix="/environments/<id:environment_id>/features")

# Deliberately below ``bp``: the view modules decorate it, so they can only be imported once
# it exists (Flask's blueprint-package pattern); importing them registers the views. Not
# sorted on purpose: this keeps the single module's rule order, which decides the endpoint an
# automatic OPTIONS request to a shared path (list/create, detail/delete) is matched to.
from . import listing, editing, detail, options  # noqa: E402, F401  # isort: skip
