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


class VersionedDeleteForm(FlaskForm):  # type: ignore[misc]
    """A deletion with the version the page showed; htmx sends DELETE data in the URL."""

    version = version_field()

    @classmethod
    def from_request(cls) -> VersionedDeleteForm:
        """Read the version from the query string or the body (plain test clients)."""
        return cls(formdata=request.values)


class TokenDeleteForm(FlaskForm):  # type: ignore[misc]
    """A deletion with the content token the page showed (traits have no version column)."""

    version = token_field()

    @classmethod
    def from_request(cls) -> TokenDeleteForm:
        """Read the token from the query string or the body (plain test clients)."""
        return cls(formdata=request.values)
