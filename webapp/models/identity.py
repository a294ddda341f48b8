"""Identities, their typed traits and identity overrides."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..extensions import Model
from .base import (
    PREFIX_LENGTH,
    TimestampMixin,
    TypedValue,
    TypedValueMixin,
    UTCDateTime,
    encode_value,
    new_hash_key,
    sha256_hex,
)

if TYPE_CHECKING:
    from .account import User
    from .feature import Feature, MultivariateOption
    from .organisation import Environment

IDENTIFIER_MAX = 2000
TRAIT_KEY_MAX = 200
TRAIT_STRING_MAX = 2000
TRAIT_TYPES = ("string", "integer", "float", "boolean")
_INT_STRING = re.compile(r"-?[0-9]+")
_FLOAT_STRING = re.compile(r"-?[0-9]+\.[0-9]+")


class Identity(Model):
    """A user as an SDK identifies them: unique per environment and identifier.

    Identifiers may be 2,000 characters (8,000 UTF-8 bytes), more than a PostgreSQL btree
    entry holds, so uniqueness is enforced on a SHA-256 of the identifier and ordering or
    prefix search uses a bounded prefix column.
    """

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("environment_id", "identifier_hash"),
        Index("ix_identities_env_prefix", "environment_id", "identifier_prefix", "id"),
        Index("ix_identities_env_created", "environment_id", "created_at", "id"),
        Index("ix_identities_env_last_seen", "environment_id", "last_seen_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    identifier: Mapped[str] = mapped_column(Text)
    identifier_hash: Mapped[str] = mapped_column(String(64))
    identifier_prefix: Mapped[str] = mapped_column(String(PREFIX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    environment: Mapped[Environment] = relationship()
    traits: Mapped[list[Trait]] = relationship(
        back_populates="identity",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Trait.key",
    )
    overrides: Mapped[list[IdentityOverride]] = relationship(
        back_populates="identity", cascade="all, delete-orphan", passive_deletes=True
    )

    def __init__(self, *, identifier: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.set_identifier(identifier)

    def set_identifier(self, identifier: str) -> None:
        """Set the identifier together with its hash and prefix columns."""
        self.identifier = identifier
        self.identifier_hash = sha256_hex(identifier)
        self.identifier_prefix = identifier[:PREFIX_LENGTH]


class Trait(TypedValueMixin, TimestampMixin, Model):
    """A typed key/value on an identity; the type is kept exactly as sent.

    ``value_prefix`` and ``value_num`` exist for indexed search: "identities where K = V"
    probes (environment, key, prefix) and numeric ranges probe (environment, key, number).
    ``value_num`` also holds numeric-looking strings, which evaluation compares as numbers.
    """

    __tablename__ = "traits"
    __table_args__ = (
        UniqueConstraint("identity_id", "key"),
        # value_type and identity_id complete the probes, so segment counts read these
        # indexes alone (index-only scans, services/segments/sql_translate.py).
        Index(
            "ix_traits_env_key_prefix_cover",
            "environment_id",
            "key",
            "value_prefix",
            "value_type",
            "identity_id",
        ),
        Index("ix_traits_env_key_num_cover", "environment_id", "key", "value_num", "identity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    # Denormalised from the identity so trait searches never join before filtering.
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(TRAIT_KEY_MAX))
    value_prefix: Mapped[str | None] = mapped_column(String(PREFIX_LENGTH))
    value_num: Mapped[float | None] = mapped_column(Float)

    identity: Mapped[Identity] = relationship(back_populates="traits")

    @property
    def value(self) -> TypedValue:
        return super().value

    @value.setter
    def value(self, new: TypedValue) -> None:
        if new is None:
            raise ValueError("a trait needs a value; delete the trait instead")
        self.value_type, self.value_text = encode_value(new)
        self.value_prefix = None if self.value_text is None else self.value_text[:PREFIX_LENGTH]
        self.value_num = numeric_form(new)


def trait_row(
    environment_id: int, identity_id: int, key: str, value: TypedValue, now: datetime
) -> dict[str, Any]:
    """Return the column values of a trait row, for bulk inserts and upserts."""
    kind, text = encode_value(value)
    return {
        "identity_id": identity_id,
        "environment_id": environment_id,
        "key": key,
        "value_type": kind,
        "value_text": text,
        "value_prefix": None if text is None else text[:PREFIX_LENGTH],
        "value_num": numeric_form(value),
        "created_at": now,
        "updated_at": now,
    }


def numeric_form(value: TypedValue) -> float | None:
    """Return the number a trait compares as, or None (numeric strings count, booleans don't)."""
    if isinstance(value, bool) or value is None:
        return None
    # Evaluation reads "007" as 7 and "1.50" as 1.5 (SPEC §2), so searches must too.
    if isinstance(value, str) and not (
        _INT_STRING.fullmatch(value) or _FLOAT_STRING.fullmatch(value)
    ):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class IdentityOverride(TypedValueMixin, TimestampMixin, Model):
    """One identity's own enabled/value for one feature; it always wins."""

    __tablename__ = "identity_overrides"
    __table_args__ = (
        UniqueConstraint("identity_id", "feature_id"),
        Index("ix_identity_overrides_env_feature", "environment_id", "feature_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # For multivariate features: the option fixed for this identity (its value is copied).
    option_id: Mapped[int | None] = mapped_column(
        ForeignKey("multivariate_options.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    hash_key: Mapped[str] = mapped_column(String(64), default=new_hash_key, nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)

    identity: Mapped[Identity] = relationship(back_populates="overrides")
    feature: Mapped[Feature] = relationship()
    option: Mapped[MultivariateOption | None] = relationship()
    created_by: Mapped[User | None] = relationship()

    def is_active(self, now: datetime) -> bool:
        """Tell whether the override still applies at ``now`` (expired ones are ignored)."""
        return self.expires_at is None or self.expires_at > now
