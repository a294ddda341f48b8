"""Database ids: the one range every URL, form, query string and JSON id is checked against.

Every table's id is an ``INTEGER`` (PostgreSQL: 32 bits; SQLite: 64), so ids are
1..2**31-1, the range both databases can bind. A number outside it never names a row,
and binding one fails in the driver (PostgreSQL: ``NumericValueOutOfRange`` from 2**31;
SQLite: ``OverflowError`` from 2**63): a server error. So input is checked here, at the
edge, and an id outside the range is answered like any id that names no row.
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import BaseConverter, ValidationError

ID_MIN, ID_MAX = 1, 2**31 - 1  # an INTEGER column (a 64-bit id would need BIGINT)
_MAX_DIGITS = len(str(ID_MAX))


def _up_to(limit: str) -> str:
    """A regex for the decimal numbers 1..``limit``, without leading zeros."""
    shorter = f"[1-9][0-9]{{0,{len(limit) - 2}}}"
    same_length = []
    for i, digit in enumerate(limit):
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):
            rest = len(limit) - i - 1
            same_length.append(f"{limit[:i]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    return "(?:" + "|".join([shorter, *same_length, limit]) + ")"


# Exactly the ids: a path segment that is no id then matches no rule, whatever the method
# (a converter refusing it after matching would answer 405 where another method matched).
ID_PATTERN = _up_to(str(ID_MAX))


def is_id(value: object) -> bool:
    """Tell whether ``value`` is an int (not a bool) inside the id range."""
    return type(value) is int and ID_MIN <= value <= ID_MAX


def parse_id(text: object) -> int | None:
    """Read an id written in ASCII digits (leading zeros allowed); None for anything else.

    Python's ``int`` also reads signs, blanks, underscores and non-ASCII digits (``"١٢"``);
    none of those is how an id is written, so none is accepted.
    """
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        return None
    digits = text.lstrip("0")
    if len(digits) > _MAX_DIGITS:
        return None
    number = int(text)
    return number if ID_MIN <= number <= ID_MAX else None


def is_number(text: object) -> bool:
    """Tell whether ``text`` is written as an integer (an optional sign and ASCII digits)."""
    if not isinstance(text, str):
        return False
    unsigned = text[1:] if text[:1] in ("-", "+") else text
    return unsigned.isascii() and unsigned.isdigit()


class IdConverter(BaseConverter):
    """``<id:name>``: a database id in a URL; anything else matches no route (404).

    Unlike ``<int:…>``, it refuses 0, numbers past ``ID_MAX``, leading zeros and non-ASCII
    digits before any view runs, so no view has to guard its ids.
    """

    regex = ID_PATTERN
    weight = 50  # as int's: a literal segment ("new") still wins over an id
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))
