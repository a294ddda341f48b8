"""Form fields holding database ids: a value that is no id gets an inline message.

Every posted id (an option, a feature, the rows of a reorder) goes through one of these, so
a forged 0, -1, 2**31 or word never reaches a query (see ``webapp.ids``): a number outside
the id range names no row ("… not found"), anything else is "not a valid id". Blank is
no id (``None``, or ``[]`` for a list); add ``InputRequired`` where one is needed.
"""

from __future__ import annotations

from typing import Any

from wtforms import Field, SelectField, StringField
from wtforms.widgets import HiddenInput

from ..ids import is_number, parse_id


def _label(field: Field) -> str:
    return field.label.text if field.label and field.label.text else field.name


def read_id(field: Field, raw: object) -> int | None:
    """Return the id posted for ``field`` (None when blank); raise ValueError with a message."""
    text = raw.strip() if isinstance(raw, str) else raw
    if text is None or text == "":
        return None
    number = parse_id(text)
    if number is None:
        if is_number(text):
            raise ValueError(f"{_label(field)} not found.")
        raise ValueError(f"{_label(field)}: “{str(text)[:40]}” is not a valid id.")
    return number


def _stored_id(value: Any) -> int | None:
    """Coerce a choice's or a default's value (an int, or its text) to an id or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return parse_id(value.strip()) if isinstance(value, str) else None


class IdField(Field):  # type: ignore[misc]
    """One database id, posted by the page (a hidden input: people pick ids, never type them)."""

    widget = HiddenInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            self.data = None
            self.data = read_id(self, valuelist[0])

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        return "" if self.data is None else str(self.data)


class IdSelectField(SelectField):  # type: ignore[misc]
    """A database id picked from a list; blank (a "none"/"all" choice) is ``None``.

    The choices may be offered as ints or their text; ``data`` is always an int or None.
    """

    def __init__(self, label: str | None = None, validators: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("validate_choice", False)
        super().__init__(label, validators, coerce=_stored_id, **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            self.data = None
            self.data = read_id(self, valuelist[0])


class IdListField(StringField):  # type: ignore[misc]
    """Comma-separated database ids (``"3,1,2"``) in their posted order; blank is ``[]``."""

    widget = HiddenInput()

    def process_data(self, value: Any) -> None:
        if isinstance(value, str):
            self.data = [n for n in (_stored_id(p) for p in value.split(",")) if n is not None]
        else:
            self.data = list(value or [])

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            self.data = []
            self.data = [read_id(self, part) for part in _parts(valuelist)]

    def _value(self) -> str:
        if self.raw_data:
            return ",".join(_parts(self.raw_data))
        return ",".join(str(n) for n in self.data or [])


def _parts(valuelist: list[Any]) -> list[str]:
    # Several values (checkboxes of one name) count as one list, like "3,1,2".
    return [part for raw in valuelist for part in str(raw).split(",") if part.strip()]
