"""The production rule's comparison of an identifier or email trait with an account email.

Pure string rules (no database): which spellings count as the same address and which look
alike but are another person's. The rule applied to identities, pages and links is tested in
tests/hardening/test_production_links.py and tests/web/identities/test_production.py.
"""

from __future__ import annotations

import pytest

from webapp.services.identities.editing_rights import LinkRule, email_form


@pytest.mark.parametrize(
    ("typed", "account"),
    [
        ("qa@example.com", "qa@example.com"),
        ("QA@Example.COM", "qa@example.com"),
        ("  qa@example.com\t\r\n", "qa@example.com"),
        ("Jürgen@example.de", "jürgen@example.de"),  # only ASCII letters fold; ü is kept
    ],
)
def test_email_form__same_address__matches(typed: str, account: str) -> None:
    assert email_form(typed) == account


@pytest.mark.parametrize(
    ("typed", "account"),
    [
        ("\u212aim@example.com", "kim@example.com"),  # Kelvin sign: str.lower() gives "k"
        ("stra\u00dfe@example.com", "strasse@example.com"),  # ß: casefold() gives "ss"
        ("q\u0430@example.com", "qa@example.com"),  # Cyrillic а
        ("\uff51\uff41@example.com", "qa@example.com"),  # fullwidth letters (NFKC merges them)
        ("\u00a0qa@example.com", "qa@example.com"),  # NBSP: str.strip() removes it
        ("qa@example.com\u200b", "qa@example.com"),  # zero-width space
        ("qa@example.com.evil.test", "qa@example.com"),
        ("JÜRGEN@example.de", "jürgen@example.de"),  # non-ASCII case is not folded
    ],
)
def test_email_form__look_alike_or_other_address__does_not_match(typed: str, account: str) -> None:
    assert email_form(typed) != account


@pytest.mark.parametrize(
    ("rule", "says", "does_not_say"),
    [
        (LinkRule(False, "qa@example.com", True), "any identity here", "Production"),
        (
            LinkRule(True, "qa@example.com", True),
            "whose identifier or email trait is qa@example.com",
            "do not count",
        ),
        (
            LinkRule(True, "qa@example.com", False),
            "whose identifier is qa@example.com",
            "email trait is",
        ),
    ],
)
def test_link_rule__summary__names_what_counts(
    rule: LinkRule, says: str, does_not_say: str
) -> None:
    assert says in rule.summary and does_not_say not in rule.summary
