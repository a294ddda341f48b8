"""Base classes for every dashboard form: no field accepts a NUL character, and no field
silently cuts what a person typed.

PostgreSQL text cannot hold NUL (a NUL reaching a query or an insert is a server error) and
no identifier, name or value needs one, so every field refuses it with an inline message
before any service sees the input. Subforms (``FieldList(FormField(...))`` rows) derive
from ``Form`` here so their fields are covered too.

A ``Length(max=...)`` validator would make WTForms render ``maxlength``, and browsers then
cut pasted text to the limit without a word. Fields render without it and show the limit
as a hint instead; text over the limit reaches the server and gets an inline error.
"""

from __future__ import annotations

from typing import Any

import flask_wtf
import wtforms
from markupsafe import Markup
from wtforms import FieldList, FormField
from wtforms.validators import Length, StopValidation

from ..services.values import as_text as as_text  # the one display rule, for the views

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


def text_limit(field: Any) -> int | None:
    """Return the most characters a field accepts (its ``Length`` validator), or None."""
    limits = [v.max for v in field.validators if isinstance(v, Length) and v.max >= 0]
    return min(limits) if limits else None


def limit_hint(limit: int) -> str:
    """Word a text limit for the hint under a field."""
    return f"At most {limit:,} characters."


class LimitHintMeta:
    """WTForms ``Meta`` mixin: render limited fields without ``maxlength``, with a hint."""

    def render_field(self, field: Any, render_kw: dict[str, Any]) -> Any:
        limit = text_limit(field)
        if limit is None:
            return super().render_field(field, render_kw)  # type: ignore[misc]
        # An explicit False keeps WTForms from adding maxlength from the Length flag.
        render_kw = {**render_kw, "maxlength": False, "data-max-length": limit}
        if getattr(field.widget, "input_type", None) == "hidden":
            return super().render_field(field, render_kw)  # type: ignore[misc]
        hint_id = f"{render_kw.get('id', field.id)}-limit"
        described = render_kw.get("aria-describedby") or render_kw.get("aria_describedby")
        render_kw["aria-describedby"] = f"{described} {hint_id}" if described else hint_id
        html = super().render_field(field, render_kw)  # type: ignore[misc]
        # format() escapes the id and the words; the widget's html is Markup already.
        # One wrapper, so the hint sits under its own input in inline (flex) forms too.
        return Markup(
            '<span class="limited">{}<small class="limit-hint" id="{}">{}</small></span>'
        ).format(html, hint_id, limit_hint(limit))


class FlaskForm(flask_wtf.FlaskForm):  # type: ignore[misc]
    """A Flask-WTF form (CSRF) whose fields refuse NUL characters and show their limits."""

    class Meta(LimitHintMeta, RefuseNulMeta):
        pass


class Form(wtforms.Form):  # type: ignore[misc]
    """A subform (no CSRF of its own) whose fields refuse NUL characters and show limits."""

    class Meta(LimitHintMeta, RefuseNulMeta):
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


