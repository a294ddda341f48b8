"""Jinja filters for the wording in ``services.humanize``: every template renders through them."""

from __future__ import annotations

from flask import Flask

from .services import humanize

FILTERS = {
    "value_text": humanize.value_text,
    "name_text": humanize.name_text,
    "plural": humanize.plural,
    "noun": humanize.noun,
    "on_off": humanize.on_off,
    "action_label": humanize.action_label,
    "object_label": humanize.object_label,
}


def init_app(app: Flask) -> None:
    """Register the wording filters on the app's Jinja environment."""
    app.jinja_env.filters.update(FILTERS)
