"""The version a page was rendered with, for optimistic checks of concurrent edits.

Dashboard forms always send it (a hidden field); a form without it comes from a page
older than the check and is refused with a "reload" message rather than saved blindly.
"""

from __future__ import annotations

from typing import Any

from flask import request
from wtforms import HiddenField, IntegerField
from wtforms.validators import InputRequired, Length
from wtforms.widgets import HiddenInput

from .base import FlaskForm

RELOAD = "This page is out of date; reload it and try again."


def version_field() -> Any:
    """A hidden integer field holding the row version the page showed (required)."""
    return IntegerField(
        widget=HiddenInput(), validators=[InputRequired(message=RELOAD)], default=None
    )


def token_field() -> Any:
    """A hidden text field holding a content token the page showed (required)."""
    return HiddenField(validators=[InputRequired(message=RELOAD), Length(max=64)])


class _DeleteForm(FlaskForm):  # type: ignore[misc]
    """A deletion form read from the query string or the body.

    htmx sends DELETE data in the URL; plain test clients send it in the body.
    """

    @classmethod
    def from_request(cls) -> Any:
        """Read the fields from the query string or the body."""
        return cls(formdata=request.values)


class VersionedDeleteForm(_DeleteForm):
    """A deletion with the version the page showed."""

    version = version_field()


class TokenDeleteForm(_DeleteForm):
    """A deletion with the content token the page showed (traits have no version column)."""

    version = token_field()
