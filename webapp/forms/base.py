"""Base classes for every dashboard form: no field accepts a NUL character.

PostgreSQL text cannot hold NUL (a NUL reaching a query or an insert is a server error) and
no identifier, name or value needs one, so every field refuses it with an inline message
before any service sees the input. Subforms (``FieldList(FormField(...))`` rows) derive
from ``Form`` here so their fields are covered too.
"""

from __future__ import annotations

from typing import Any

import flask_wtf
import wtforms
from wtforms import FieldList, FormField
from wtforms.validators import StopValidation

NUL = "\x00"


def refuse_nul(form: Any, field: Any) -> None:
    """Stop validating a field whose submitted text contains a NUL character."""
    if any(isinstance(raw, str) and NUL in raw for raw in getattr(field, "raw_data", None) or ()):
        label = field.label.text if field.label and field.label.text else field.name
        raise StopValidation(f"{label} must not contain NUL characters.")


class RefuseNulMeta:
    """WTForms ``Meta`` mixin: bind every field with ``refuse_nul`` as its first validator."""

    def bind_field(self, form: Any, unbound_field: Any, options: dict[str, Any]) -> Any:
        field = super().bind_field(form, unbound_field, options)  # type: ignore[misc]
        # Subform containers validate their own fields (which get the check themselves).
        if not isinstance(field, FieldList | FormField):
            field.validators = [refuse_nul, *field.validators]
        return field


class FlaskForm(flask_wtf.FlaskForm):  # type: ignore[misc]
    """A Flask-WTF form (CSRF) whose fields refuse NUL characters."""

    class Meta(RefuseNulMeta):
        pass


class Form(wtforms.Form):  # type: ignore[misc]
    """A subform (no CSRF of its own) whose fields refuse NUL characters."""

    class Meta(RefuseNulMeta):
        pass


def first_error(errors: Any, name: str | None = None) -> str | None:
    """Return the first message in WTForms' (possibly nested) ``form.errors`` as "field: message".

    Subform lists nest errors as lists of dicts; the innermost field name labels the message.
    """
    if isinstance(errors, str):
        return f"{name}: {errors}" if name else errors
    items = errors.items() if isinstance(errors, dict) else ((name, e) for e in errors)
    for key, value in items:
        found = first_error(value, key if isinstance(key, str) else name)
        if found:
            return found
    return None


def as_text(value: Any) -> str:
    """Show a typed value in a text input (booleans as true/false, no value as empty)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
