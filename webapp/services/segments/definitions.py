"""Segments: list with member counts, create/edit/delete, live preview and change impact."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from ...clock import utcnow
from ...evaluation import IdentityInput, RuleError, compile_snapshot, evaluate, validate_rules
from ...extensions import db
from ...models import Identity, Segment, Trait, User
from .. import audit, locking, regex_guard, revisions
from ..errors import NotFound, Stale, ValidationError
from ..sdk import sdk_service
from ..sdk.snapshots import bundle_for_environment
from . import segment_overrides, sql_membership

RulesDocument = list[dict[str, Any]]
NAME_MAX = 200
SAMPLE_SIZE = 10
IMPACT_SAMPLE = 500


class RulesInvalid(ValidationError):
    """Invalid rules; ``by_path`` maps ``"form"``, ``"g<i>"`` or ``"g<i>-c<j>"`` to a message."""

    def __init__(self, by_path: Mapping[str, str]) -> None:
        super().__init__("The rules have problems; see the highlighted conditions.", "rules")
        self.by_path = dict(by_path)


def _path_key(path: Sequence[int | str]) -> str:
    # Builder rules are [top rule] -> groups -> conditions; deeper paths fold into a group.
    numbers = [p for p in path if isinstance(p, int)]
    if len(numbers) >= 3 and path[-2] == "conditions" and len(numbers) == 3:
        return f"g{numbers[1]}-c{numbers[2]}"
    if len(numbers) >= 2:
        return f"g{numbers[1]}"
    return "form"


def rule_errors(rules: RulesDocument) -> dict[str, str]:
    """Map rule problems to builder positions (empty groups and no groups included).

    :param rules: rules in the document shape
    :return: messages by ``"form"``, ``"g<i>"`` or ``"g<i>-c<j>"``
    """
    found: dict[str, str] = {}
    parsed = sql_membership.rules_from_document(rules)
    # Catastrophic REGEX patterns are refused too (after validation: invalid ones first).
    errors: list[RuleError] = validate_rules(parsed) + regex_guard.rule_problems(parsed)
    for error in errors:
        found.setdefault(_path_key(error.path), error.message)
    groups = [g for rule in rules for g in rule.get("rules") or []]
    if rules and not groups and not any(rule.get("conditions") for rule in rules):
        found["form"] = "Add at least one group with a condition."
    for index, group in enumerate(groups):
        if not group.get("conditions") and not group.get("rules"):
            found.setdefault(f"g{index}", "Add a condition or remove this group.")
    return found


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """One line of the segments list."""

    segment: Segment
    conditions: int
    members: int
    features: list[str]


@dataclass(frozen=True, slots=True)
class Impact:
    """What saving edited rules would change in one environment."""

    entering: int
    leaving: int
    features: dict[str, int]
    estimated: bool


@dataclass(frozen=True, slots=True)
class Preview:
    """Live preview of unsaved rules: count, sample and impact against the saved rules."""

    count: int
    sample: list[Identity]
    impact: Impact | None


def count_conditions(rules: Sequence[Mapping[str, Any]]) -> int:
    """Count the conditions in a rule tree.

    :param rules: rules in the document shape
    :return: the number of conditions at every depth
    """
    return sum(
        len(rule.get("conditions") or ()) + count_conditions(rule.get("rules") or ())
        for rule in rules
    )


def get_segment(project_id: int, segment_id: int) -> Segment:
    """Return one of the project's segments.

    :raises NotFound: when it does not exist in this project
    """
    segment = db.session.get(Segment, segment_id)
    if segment is None or segment.project_id != project_id:
        raise NotFound("Segment not found.")
    return segment


def list_segments(project_id: int, environment_id: int, search: str = "") -> list[SegmentRow]:
    """List the project's segments with member counts in one environment.

    :param project_id: the project
    :param environment_id: the environment members are counted in
    :param search: a case-insensitive name filter
    :return: rows in project order
    """
    query = select(Segment).where(Segment.project_id == project_id)
    if search:
        query = query.where(Segment.name.icontains(search, autoescape=True))
    segments = db.session.scalars(query.order_by(Segment.position, Segment.id)).all()
    return [
        SegmentRow(
            segment=segment,
            conditions=count_conditions(segment.rules or []),
            members=sql_membership.count_members(
                environment_id, segment.rules or [], segment.hash_id
            ),
            features=[
                o.feature.name for o in segment_overrides.list_overrides(segment, environment_id)
            ],
        )
        for segment in segments
    ]


def trait_keys(environment_id: int, limit: int = 200) -> list[str]:
    """Return trait keys seen in an environment (for property autocompletion)."""
    query = (
        select(Trait.key)
        .distinct()
        .where(Trait.environment_id == environment_id)
        .order_by(Trait.key)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def check_rules(rules: RulesDocument) -> None:
    """Validate rules with the evaluation module.

    :raises RulesInvalid: with every problem found
    """
    errors = rule_errors(rules)
    if errors:
        raise RulesInvalid(errors)


def _check_name(name: str, project_id: int, segment_id: int | None = None) -> str:
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise ValidationError(f"A segment needs a name of 1 to {NAME_MAX} characters.", "name")
    # Overrides and the identity page name segments; two alike would be told apart by id only.
    same = select(Segment.id).where(
        Segment.project_id == project_id, func.lower(Segment.name) == name.lower()
    )
    if db.session.scalar(same.where(Segment.id != (segment_id or 0))) is not None:
        raise ValidationError(f"This project already has a segment named “{name}”.", "name")
    return name


def _state(segment: Segment) -> dict[str, Any]:
    return {"name": segment.name, "description": segment.description, "rules": segment.rules}


def create_segment(
    project_id: int, actor: User, name: str, description: str, rules: RulesDocument
) -> Segment:
    """Create a segment after validating its name and rules (audited, revisions bumped).

    :raises ValidationError: on a bad or duplicate name
    :raises RulesInvalid: on invalid rules
    """
    name = _check_name(name, project_id)
    check_rules(rules)
    position = db.session.scalar(
        select(func.coalesce(func.max(Segment.position), -1)).where(
            Segment.project_id == project_id
        )
    )
    segment = Segment(
        project_id=project_id,
        name=name,
        description=description or "",
        rules=rules,
        position=int(position or 0) + 1,
    )
    db.session.add(segment)
    db.session.flush()
    audit.record(actor, "create", "segment", object_id=segment.id, object_label=name,
                 project_id=project_id, after=_state(segment))  # fmt: skip
    revisions.bump_project(project_id)
    db.session.commit()
    return segment


def update_segment(
    segment: Segment,
    actor: User,
    *,
    name: str,
    description: str,
    rules: RulesDocument,
    version: int | None,
) -> Segment:
    """Save edited rules unless someone saved since the editor opened the page.

    :raises Conflict: when ``version`` is stale (the rejected attempt is audited)
    :raises ValidationError: on a bad or duplicate name
    :raises RulesInvalid: on invalid rules
    """
    name = _check_name(name, segment.project_id, segment.id)
    check_rules(rules)
    locking.relock(segment, "This segment no longer exists.")
    before = _state(segment)
    if version != segment.version:
        audit.record(actor, "update_rejected", "segment", object_id=segment.id,
                     object_label=segment.name, project_id=segment.project_id, before=before,
                     after={"name": name, "description": description, "rules": rules,
                            "version": version})  # fmt: skip
        db.session.commit()
        raise Stale("segment")
    segment.name, segment.description, segment.rules = name, description or "", rules
    segment.version += 1
    audit.record(actor, "update", "segment", object_id=segment.id, object_label=name,
                 project_id=segment.project_id, before=before, after=_state(segment))  # fmt: skip
    revisions.bump_project(segment.project_id)
    db.session.commit()
    return segment


def delete_segment(segment: Segment, actor: User) -> None:
    """Delete a segment and its overrides in every environment (audited)."""
    overrides = [
        {"feature": o.feature.name, "environment_id": o.environment_id} for o in segment.overrides
    ]
    audit.record(actor, "delete", "segment", object_id=segment.id, object_label=segment.name,
                 project_id=segment.project_id,
                 before={**_state(segment), "overrides": overrides})  # fmt: skip
    revisions.bump_project(segment.project_id)
    db.session.delete(segment)
    db.session.commit()


def identities_by_ids(ids: Sequence[int]) -> list[Identity]:
    """Load identities in the given id order."""
    found = {i.id: i for i in db.session.scalars(select(Identity).where(Identity.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def preview(
    environment_id: int, rules: RulesDocument, saved: Segment | None, segment_key: str
) -> Preview:
    """Count and sample the members of unsaved rules, and diff them against the saved ones.

    :param environment_id: the environment previewed
    :param rules: the unsaved rules
    :param saved: the saved segment (None while creating)
    :param segment_key: the hash key splits use
    :return: the preview
    """
    membership = sql_membership.prepare(environment_id, rules, segment_key)
    count = sql_membership.count_prepared(membership)
    sample = identities_by_ids(sql_membership.member_ids_prepared(membership, limit=SAMPLE_SIZE))
    impact = None
    if saved is not None:
        impact = change_impact(environment_id, saved, rules)
    return Preview(count, sample, impact)


def _ids_where(environment_id: int, where: Any, limit: int | None) -> tuple[list[int], int]:
    base = select(Identity.id).where(Identity.environment_id == environment_id, where)
    total = int(db.session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    query = base.order_by(Identity.id)
    return list(db.session.scalars(query.limit(limit) if limit else query)), total


def _moved(
    environment_id: int, into: sql_membership.Membership, out_of: sql_membership.Membership
) -> tuple[list[int], int, bool]:
    """Return (sample ids, total, estimated) of identities in ``into`` and not in ``out_of``."""
    a, b = into.translation, out_of.translation
    candidates, total = _ids_where(
        environment_id,
        sql_membership.all_of([a.maybe, sql_membership.negate(b.surely)]),
        IMPACT_SAMPLE,
    )
    members = sql_membership.python_members(into, candidates) - sql_membership.python_members(
        out_of, candidates
    )
    if total <= len(candidates):
        return sorted(members), len(members), False
    # More candidates than we check: scale the sampled share (labelled as an estimate).
    share = len(members) / len(candidates) if candidates else 0.0
    return sorted(members), round(share * total), True


def change_impact(environment_id: int, saved: Segment, rules: RulesDocument) -> Impact:
    """Compare unsaved rules with the saved ones: who enters, who leaves, which flags move.

    :param environment_id: the environment
    :param saved: the saved segment
    :param rules: the unsaved rules
    :return: the impact (counts are estimates when ``estimated``)
    """
    new = sql_membership.prepare(environment_id, rules, saved.hash_id)
    old = sql_membership.prepare(environment_id, saved.rules or [], saved.hash_id)
    entering, n_in, est_in = _moved(environment_id, new, old)
    leaving, n_out, est_out = _moved(environment_id, old, new)
    features = _feature_changes(environment_id, saved, rules, entering + leaving)
    scale = 1.0
    sampled = len(entering) + len(leaving)
    if sampled and (est_in or est_out):
        scale = (n_in + n_out) / sampled
    return Impact(
        entering=n_in,
        leaving=n_out,
        features={name: round(n * scale) for name, n in features.items()},
        estimated=est_in or est_out,
    )


def _feature_changes(
    environment_id: int, saved: Segment, rules: RulesDocument, ids: Sequence[int]
) -> dict[str, int]:
    names = [o.feature.name for o in segment_overrides.list_overrides(saved, environment_id)]
    if not names or not ids:
        return {name: 0 for name in names}
    bundle = bundle_for_environment(environment_id)
    snapshot = bundle.compiled.snapshot
    edited = tuple(
        dataclasses.replace(s, rules=sql_membership.rules_from_document(rules))
        if s.key == saved.hash_id
        else s
        for s in snapshot.segments
    )
    before, after = (
        bundle.compiled,
        compile_snapshot(dataclasses.replace(snapshot, segments=edited)),
    )
    changed = {name: 0 for name in names}
    now = utcnow()
    for identity in identities_by_ids(ids):
        stored = sdk_service.read_stored_identity(environment_id, identity.identifier)
        person = IdentityInput(identity.identifier, stored.traits)
        overrides = sdk_service.identity_overrides(identity.id, now)
        old_flags = evaluate(before, person, overrides=overrides).flags
        new_flags = evaluate(after, person, overrides=overrides).flags
        for name in names:
            a, b = old_flags.get(name), new_flags.get(name)
            if a is not None and b is not None and (a.enabled, a.value) != (b.enabled, b.value):
                changed[name] += 1
    return changed


def member_page(
    environment_id: int, segment: Segment, after_id: int | None, limit: int, search: str
) -> list[Identity]:
    """Return one page of a segment's members in id order (keyset pagination).

    :param environment_id: the environment
    :param segment: the segment
    :param after_id: the last id shown on the previous page
    :param limit: page size
    :param search: identifier filter
    :return: identities
    """
    ids = sql_membership.member_ids(
        environment_id, segment.rules or [], segment.hash_id,
        after_id=after_id, limit=limit, search=search or None,
    )  # fmt: skip
    return identities_by_ids(ids)
