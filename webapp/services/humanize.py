"""Words for people: the one place that turns values, counts, names and audit actions into text.

Every page (through the Jinja filters registered in ``webapp.humanize``) and every message a
service writes uses these functions, so a value, a plural or an audit action reads the same
everywhere, and nothing Python-shaped (``None``, ``False``, ``snake_case``) reaches a person.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any

NO_VALUE = "no value"
SPACE_MARK = "␣"

# Nouns whose plural is not the singular plus "s".
_PLURALS = {
    "identity": "identities",
    "is": "are",
    "was": "were",
    "this": "these",
    "it": "they",
}

# Audit action -> what a person reads, in the past tense ("alice@x created identity override").
# audit.record refuses an action missing here, so a new kind of event must be named first.
ACTION_LABELS: Mapping[str, str] = {
    "create": "created",
    "update": "changed",
    "delete": "deleted",
    "toggle": "switched",
    "remove": "removed",
    "undo": "undid the last change to",
    "choose_option": "chose a variant for",
    "reorder": "reordered",
    "reset": "reset",
    "cleanup": "removed the expired",
    "revoke": "revoked",
    "import": "imported",
    "link": "linked",
    "unlink": "unlinked",
    "update_rejected": "tried to change (refused: it had changed meanwhile)",
    "delete_rejected": "tried to delete (refused: it had changed meanwhile)",
    "bulk_delete": "deleted (bulk action)",
    "bulk_override": "overrode a flag on (bulk action)",
    "bulk_remove_overrides": "removed overrides from (bulk action)",
    # Erasure (right to be forgotten) and retention: the label is the erased:… token.
    "erase": "erased",
    "bulk_erase": "erased (bulk action)",
    "prune": "erased (retention)",
    # projects and environments administration (services/projects)
    "rename": "renamed",
    "clone": "cloned (a copy of another environment)",
    # people (services/people.py)
    "invite": "sent an invitation link to",
    "change_roles": "changed the roles of",
    "disable": "disabled",
    "enable": "enabled again",
    "issue_reset_link": "issued a password-reset link for",
    "accept_invitation": "accepted the invitation of",
    "reset_password": "reset the password (by link) of",
    "change_password": "changed the password of",
    # experiments
    "start": "started",
    "stop": "stopped",
}

# Audit object type -> its name for people. audit.record refuses a type missing here.
OBJECT_LABELS: Mapping[str, str] = {
    "feature": "feature",
    "feature_state": "flag default",
    "multivariate_option": "variant",
    "segment": "segment",
    "segment_override": "segment override",
    "identity": "identity",
    "identity_override": "identity override",
    "identity_link": "identity link",
    "trait": "trait",
    "server_key": "server key",
    "environment": "environment",
    "trait_columns": "default trait columns",
    "project": "project",
    "account": "account",
    "experiment": "experiment",
}

# Keys of the audited before/after states -> their names in the audit log's diff.
FIELD_LABELS: Mapping[str, str] = {
    "enabled": "on/off",
    "value_type": "value type",
    "value_text": "value as text",
    "option_id": "variant",
    "expires_at": "expires",
    "server_key_only": "server-side keys only",
    "goal_event": "goal event",
    "started_at": "started",
    "stopped_at": "stopped",
    # usage: a multivariate option's variant key
    "key": "variant key",
}

# Characters drawn as nothing or as blank space, beyond the Unicode categories checked below.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp", "Zs"})


def plural(count: int, singular: str, many: str | None = None) -> str:
    """Return ``count`` and the noun in the right number: "1 identity", "2,000 identities".

    :param many: the plural when it is not the singular plus "s" (or a known irregular one).
    """
    return f"{count:,} {noun(count, singular, many)}"


def noun(count: int, singular: str, many: str | None = None) -> str:
    """Return the noun alone, singular for exactly one and plural otherwise."""
    if count == 1:
        return singular
    return many or _PLURALS.get(singular) or f"{singular}s"


def value_text(value: Any) -> str:
    """Show a typed value: strings quoted (so "42" and 42 differ), null as "no value".

    Booleans read "true"/"false", numbers as written; a list or object is shown as JSON.
    """
    if value is None:
        return NO_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return f"“{_marked(value)}”"
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def on_off(enabled: Any) -> str:
    """Show a flag's enabled state as "on" or "off" (no value: "no override")."""
    if enabled is None:
        return "no override"
    return "on" if enabled else "off"


def name_text(name: Any) -> str:
    """Show a name (identifier, trait key, segment name) so it is always visible.

    A name that is empty, made of blanks, or holding invisible characters (zero-width,
    control, bidi, unusual spaces) is quoted with each of those characters marked: a space as
    ␣, anything else as ``<U+200B>``. Ordinary names are returned unchanged.
    """
    text = "" if name is None else str(name)
    if text and not needs_marking(text):
        return text
    return f"“{_marked(text)}”"


def needs_marking(text: str) -> bool:
    """Say whether ``text`` would look empty or hide characters if shown as it is."""
    if not text or text != text.strip() or "  " in text:
        return True
    return not _all_visible(text)


def action_label(action: str) -> str:
    """Return the past-tense words for an audit action ("created", "switched")."""
    return ACTION_LABELS.get(action) or _words(action)


def object_label(object_type: str) -> str:
    """Return the name people use for an audited kind of object ("segment override")."""
    return OBJECT_LABELS.get(object_type) or _words(object_type)


def field_label(key: str) -> str:
    """Return the name of an audited state's field ("value type" for ``value_type``)."""
    return FIELD_LABELS.get(key) or _words(key)


def change_text(before: Any, after: Any) -> str:
    """Describe a change of one value: "“a” → “b”", "no value → true"."""
    return f"{value_text(before)} → {value_text(after)}"


def _words(name: str) -> str:
    return name.replace("_", " ")


def _invisible(ch: str) -> bool:
    return ch in _INVISIBLE_LETTERS or unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def _all_visible(text: str) -> bool:
    """Say whether no character of ``text`` but the plain space is invisible, in C code.

    ``str.isprintable()`` is false exactly for the characters whose category is "Other" or
    "Separator" (``_INVISIBLE_CATEGORIES``), the plain space excepted; the per-character
    ``_invisible`` walk cost several milliseconds per long name on every page.
    """
    return text.isprintable() and _INVISIBLE_LETTERS.isdisjoint(text)


def _marked(text: str) -> str:
    """Replace invisible characters by visible marks; plain spaces only at the edges or runs."""
    if not text or (
        _all_visible(text) and text[0] != " " and text[-1] != " " and "  " not in text
    ):
        return text  # nothing to mark
    marks = []
    last = len(text) - 1
    for index, ch in enumerate(text):
        if ch == " ":
            edge = index in (0, last)
            run = text[index - 1 : index] == " " or text[index + 1 : index + 2] == " "
            marks.append(SPACE_MARK if edge or run else ch)
        elif _invisible(ch):
            marks.append(f"<U+{ord(ch):04X}>")
        else:
            marks.append(ch)
    return "".join(marks)
