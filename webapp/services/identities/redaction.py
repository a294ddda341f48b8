"""Redact erased identities from the audit log: their identifier and trait values become tokens.

A token is ``erased:`` and 16 hex digits of an HMAC (keyed by the app's secret) of the
environment id and the identifier, so every event of one identity still carries the same
token after erasure (its history lines up), nobody without the key can test a guess, and
the same identifier in another environment gets another token. A trait value becomes a
token of the identifier, the key and the value: a change from one value to another still
reads as a change.

What is rewritten (issue 18), for each erased identity:

- every event carrying its ``identity_id`` (its history: trait, override, link, create and
  delete events), and the events of earlier identities with the same identifier in the same
  environment (deleted, then identified again): the identifier in the label and anywhere in
  ``before``/``after``; trait values structurally (a trait event's ``value``, a delete
  snapshot's ``traits``), whatever their type;
- the environment's bulk events (their label quotes the search): the identifier and the
  identity's string trait values of ``MIN_QUOTED_VALUE`` characters or more, where they
  stand as whole words (a short value such as "pro" is a cohort, not a person, and
  replacing it inside other words would garble the log).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ...extensions import db
from ...models import AuditEvent

ERASED_PREFIX = "erased:"
MIN_QUOTED_VALUE = 4
# A label is cut at this length (audit.record), so a long identifier may end it half-way.
_LABEL_MAX = 300
_TRUNCATION_PROBE = 20


def identity_token(secret: bytes, environment_id: int, identifier: str) -> str:
    """Return the stable stand-in for an identifier: ``erased:`` and 16 hex digits."""
    message = f"{environment_id}\x00{identifier}".encode("utf-8", "surrogatepass")
    return ERASED_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()[:16]


def value_token(secret: bytes, environment_id: int, identifier: str, key: str, value: Any) -> str:
    """Return the stand-in for one trait value of an identity (stable per key and value)."""
    text = json.dumps([environment_id, identifier, key, value], default=str, ensure_ascii=True)
    digest = hmac.new(secret, text.encode("ascii"), hashlib.sha256).hexdigest()[:16]
    return ERASED_PREFIX + digest


@dataclass
class Erased:
    """One identity being erased: what must disappear from the log and what replaces it."""

    identity_id: int
    identifier: str
    token: str
    # Current string trait values, quoted in bulk search labels perhaps.
    values: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Scrubber:
    """Rewrites the events of one identity."""

    secret: bytes
    environment_id: int
    who: Erased

    def label(self, text: str) -> str:
        text = text.replace(self.who.identifier, self.who.token)
        if len(text) >= _LABEL_MAX - 1:
            # "key on <identifier…>" cut at 300 characters: the identifier's head ends it.
            head = self.who.identifier[:_TRUNCATION_PROBE]
            start = text.find(head)
            if head and start >= 0 and self.who.identifier.startswith(text[start:]):
                text = text[:start] + self.who.token
        return text

    def value(self, key: Any, value: Any) -> str:
        return value_token(self.secret, self.environment_id, self.who.identifier, str(key), value)

    def walk(self, node: Any, trait_key: str | None) -> Any:
        """Redact a before/after state; ``trait_key`` is set inside a trait event."""
        if isinstance(node, str):
            return self.label(node)
        if isinstance(node, list):
            return [self.walk(item, trait_key) for item in node]
        if not isinstance(node, dict):
            return node
        redacted: dict[str, Any] = {}
        for key, item in node.items():
            if key == "identifier" and isinstance(item, str):
                redacted[key] = self.who.token
            elif key == "traits" and isinstance(item, dict):
                redacted[key] = {k: self.value(k, v) for k, v in item.items()}
            elif key == "value" and trait_key is not None:
                redacted[key] = self.value(trait_key, item)
            else:
                redacted[key] = self.walk(item, trait_key)
        return redacted


def _string_trait_values(event: AuditEvent) -> Iterable[str]:
    for state in (event.before, event.after):
        if isinstance(state, dict) and isinstance(state.get("value"), str):
            yield state["value"]


def redact_identity_events(secret: bytes, environment_id: int, erased: Sequence[Erased]) -> int:
    """Rewrite the history of the erased identities (and of earlier ones with their identifiers).

    The caller commits, in the transaction that deletes the identities.

    :return: the number of events rewritten.
    """
    if not erased:
        return 0
    by_id = {who.identity_id: who for who in erased}
    by_label = {who.identifier[:_LABEL_MAX]: who for who in erased}
    # Earlier identities of the same identifier: their create/delete events are labelled
    # with it (manage.py), which names their ids.
    for old_id, label in db.session.execute(
        select(AuditEvent.identity_id, AuditEvent.object_label).where(
            AuditEvent.environment_id == environment_id,
            AuditEvent.object_type == "identity",
            AuditEvent.action.in_(("create", "delete")),
            AuditEvent.object_label.in_(list(by_label)),
            AuditEvent.identity_id.is_not(None),
        )
    ):
        if old_id is not None:
            by_id.setdefault(old_id, by_label[label])
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.identity_id.in_(list(by_id)))
    ).all()
    for event in events:
        assert event.identity_id is not None  # selected by it
        who = by_id[event.identity_id]
        if event.object_type == "trait":
            who.values.update(_string_trait_values(event))
        scrub = _Scrubber(secret, environment_id, who)
        trait_key = event.object_id if event.object_type == "trait" else None
        event.object_label = scrub.label(event.object_label or "")
        event.before = scrub.walk(event.before, trait_key)
        event.after = scrub.walk(event.after, trait_key)
    return len(events)


def bulk_event_ids(environment_id: int) -> list[int]:
    """Return the ids of the environment's bulk events (their labels quote searches)."""
    return list(
        db.session.scalars(
            select(AuditEvent.id).where(
                AuditEvent.environment_id == environment_id,
                AuditEvent.identity_id.is_(None),
                AuditEvent.action.like("bulk\\_%", escape="\\"),
            )
        )
    )


def redact_bulk_events(event_ids: Sequence[int], erased: Sequence[Erased]) -> int:
    """Replace the erased identifiers and distinctive trait values in bulk events' searches.

    :param event_ids: from ``bulk_event_ids``.
    :return: the number of events rewritten.
    """
    if not event_ids or not erased:
        return 0
    replacements: dict[str, str] = {}
    for who in erased:
        for text in who.values:
            if len(text.strip()) >= MIN_QUOTED_VALUE:
                replacements.setdefault(text, who.token)
        replacements[who.identifier] = who.token
    replacements = {text: token for text, token in replacements.items() if text}
    pattern = re.compile(
        "|".join(
            rf"(?<!\w){re.escape(text)}(?!\w)"
            for text in sorted(replacements, key=len, reverse=True)
        )
    )
    changed = 0
    for event in db.session.scalars(select(AuditEvent).where(AuditEvent.id.in_(event_ids))):
        state = {"label": event.object_label, "before": event.before, "after": event.after}
        redacted = _replace_strings(state, pattern, replacements)
        if redacted != state:
            event.object_label = redacted["label"]
            event.before, event.after = redacted["before"], redacted["after"]
            changed += 1
    return changed


def _replace_strings(node: Any, pattern: re.Pattern[str], replacements: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return pattern.sub(lambda match: replacements[match.group(0)], node)
    if isinstance(node, list):
        return [_replace_strings(item, pattern, replacements) for item in node]
    if isinstance(node, dict):
        return {key: _replace_strings(item, pattern, replacements) for key, item in node.items()}
    return node
