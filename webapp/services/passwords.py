"""The password rule for dashboard accounts, in one place: CLI, invitations, resets, changes.

A password has at least ``MIN_PASSWORD_LENGTH`` characters (at most ``MAX_PASSWORD_LENGTH``),
is not on the bundled list of common passwords (``webapp/data/common_passwords.txt``,
compared case-insensitively) and is not the account's email address.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from werkzeug.security import generate_password_hash

from .errors import ValidationError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """Return the bundled common passwords, lower-cased."""
    text = resources.files("webapp").joinpath("data/common_passwords.txt").read_text("utf-8")
    lines = (line.strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def check_password(password: str, email: str, field: str = "password") -> None:
    """Refuse a password that breaks the rule, with a message that says which part.

    :param email: the account's (normalised) email address, which the password must not be.
    :raises ValidationError: too short, too long, common, or the email address.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"Password must have at least {MIN_PASSWORD_LENGTH} characters.", field
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"Password must have at most {MAX_PASSWORD_LENGTH:,} characters.", field
        )
    lowered = password.strip().lower()
    if lowered in common_passwords():
        raise ValidationError("This password is too common; choose another.", field)
    if lowered == email.strip().lower():
        raise ValidationError("The password must not be your email address.", field)


def hash_password(password: str) -> str:
    """Return the stored form of a password (werkzeug's salted scrypt)."""
    return generate_password_hash(password)
