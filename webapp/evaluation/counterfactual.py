"""The smallest single trait change that flips an identity's membership of a segment.

Candidate changes are derived from the segment's own conditions (the condition
value, its neighbours, removing the trait, ...) and each is *verified* by
re-evaluating the segment, so a suggestion is never wrong, only possibly absent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from .compile import CompiledEnvironment
from .engine import make_subject
from .operators import lookup, reads_identity_key
from .segments import JSONPATH_PREFIX, CompiledCondition, CompiledRule, CompiledSegment
from .types import IdentityInput, TraitValue

_TRAIT_PATH_PREFIX = "$.identity.traits."


@dataclass(frozen=True, slots=True)
class Counterfactual:
    """A suggested change; ``trait_key`` None means no single trait change can flip it.

    ``remove`` True means "delete the trait" (then ``new_value`` is None).
    """

    segment_key: str
    segment_name: str
    is_member: bool
    trait_key: str | None
    new_value: TraitValue | None
    remove: bool
    statement: str


def counterfactual(
    compiled: CompiledEnvironment, segment_key: str, identity: IdentityInput
) -> Counterfactual:
    """Find one trait change that would make the identity enter (or leave) a segment.

    :param compiled: the compiled environment
    :param segment_key: the segment's key
    :param identity: the identity as it is now
    :return: the change, verified by evaluation, or a statement that none exists
    :raises KeyError: when the environment has no such segment
    """
    segment = compiled.segments_by_key[segment_key]
    member = segment.matches(make_subject(compiled, identity))
    for trait_key, value, remove in _candidates(segment, identity):
        traits = dict(identity.traits)
        if remove:
            traits.pop(trait_key, None)
        else:
            traits[trait_key] = value
        trial = dataclasses.replace(identity, traits=traits)
        if segment.matches(make_subject(compiled, trial)) != member:
            statement = _statement(segment, identity, member, trait_key, value, remove)
            return Counterfactual(
                segment.key, segment.name, member, trait_key, value, remove, statement
            )
    return Counterfactual(
        segment.key, segment.name, member, None, None, False, _impossible(segment, member)
    )


def _statement(
    segment: CompiledSegment,
    identity: IdentityInput,
    member: bool,
    key: str,
    value: TraitValue | None,
    remove: bool,
) -> str:
    current = identity.traits.get(key)
    now = f"{key} is not set" if current is None else f"{key} is {current!r}"
    change = f"remove {key}" if remove else f"set {key} = {value!r}"
    return f"{now}; {change} to {'leave' if member else 'enter'} {segment.name!r}"


def _impossible(segment: CompiledSegment, member: bool) -> str:
    reasons = sorted({_fixed_reason(c) for c in _conditions(segment.rules)} - {""})
    if not segment.rules:
        reasons = ["the segment has no rules"]
    why = "; depends on " + ", ".join(reasons) if reasons else ""
    verb = "leave" if member else "enter"
    return f"no single trait change makes this identity {verb} {segment.name!r}{why}"


def _fixed_reason(compiled: CompiledCondition) -> str:
    condition = compiled.condition
    if reads_identity_key(condition.operator, condition.property):
        return "a percentage split on the identity key"
    if condition.property.startswith(JSONPATH_PREFIX) and not _trait_of(condition.property):
        return f"{condition.property}, which traits cannot change"
    return ""


def _conditions(rules: tuple[CompiledRule, ...]) -> Iterator[CompiledCondition]:
    for rule in rules:
        yield from rule.conditions
        yield from _conditions(rule.rules)


def _trait_of(property_: str) -> str | None:
    if property_.startswith(_TRAIT_PATH_PREFIX):
        return property_[len(_TRAIT_PATH_PREFIX) :] or None
    if property_.startswith(JSONPATH_PREFIX) or not property_:
        return None
    return property_


def _candidates(
    segment: CompiledSegment, identity: IdentityInput
) -> Iterator[tuple[str, TraitValue | None, bool]]:
    seen: set[tuple[str, str, object, bool]] = set()
    for compiled in _conditions(segment.rules):
        key = _trait_of(compiled.condition.property)
        if key is None:
            continue
        for value, remove in _values_for(compiled):
            marker = (key, type(value).__name__, value, remove)
            if marker not in seen:
                seen.add(marker)
                yield key, value, remove


def _values_for(compiled: CompiledCondition) -> Iterator[tuple[TraitValue | None, bool]]:
    condition = compiled.condition
    yield None, True
    for value in lookup(condition.operator).trial_values(condition.value, compiled.test):
        yield value, False
