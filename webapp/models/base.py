"""Column types and mixins shared by the models."""

import hashlib
import math
import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ..clock import utcnow

TypedValue = str | int | float | bool | None

VALUE_TYPES = ("string", "integer", "float", "boolean", "null")
PREFIX_LENGTH = 100



def new_hash_key() -> str:
    """Return a fresh, stable hashing seed for a feature state (a UUID, like Flagsmith's)."""
    return str(uuid.uuid4())


def sha256_hex(text: str) -> str:
    """Return the hex SHA-256 of a string's UTF-8 bytes (used for bounded unique indexes)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class UTCDateTime(TypeDecorator[datetime]):
    """Store naive UTC, return aware UTC, so SQLite and PostgreSQL behave the same."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def value_type_of(value: TypedValue) -> str:
    """Name the stored type of a typed value; ``bool`` is checked before ``int`` on purpose."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise TypeError(f"unsupported value type: {type(value).__name__}")


def encode_value(value: TypedValue) -> tuple[str, str | None]:
    """Return ``(value_type, value_text)`` for storage; the text round-trips exactly."""
    kind = value_type_of(value)
    if kind == "null":
        return kind, None
    if kind == "boolean":
        return kind, "true" if value else "false"
    if kind == "float":
        assert isinstance(value, float)
        if not math.isfinite(value):
            raise ValueError("float values must be finite")
        return kind, repr(value)
    return kind, str(value)


def decode_value(kind: str, text: str | None) -> TypedValue:
    """Rebuild a typed value from its stored ``(value_type, value_text)``."""
    if kind == "null" or text is None:
        return None
    if kind == "boolean":
        return text == "true"
    if kind == "integer":
        return int(text)
    if kind == "float":
        return float(text)
    return text


class TypedValueMixin:
    """A typed value stored as a type name plus an exact text form."""

    value_type: Mapped[str] = mapped_column(String(8), default="null", nullable=False)
    value_text: Mapped[str | None] = mapped_column(Text)

    @property
    def value(self) -> TypedValue:
        return decode_value(self.value_type, self.value_text)

    @value.setter
    def value(self, new: TypedValue) -> None:
        self.value_type, self.value_text = encode_value(new)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


__all__ = [
    "PREFIX_LENGTH",
    "TimestampMixin",
    "TypedValue",
    "TypedValueMixin",
    "UTCDateTime",
    "decode_value",
    "encode_value",
    "new_hash_key",
    "sha256_hex",
    "value_type_of",
]
