"""Segment membership: property reading, trait normalisation and compiled rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from .normalise import normalise, normalise_traits
from .operators import build_predicate, reads_identity_key
from .predicates import Predicate
from .types import Condition, ContextValue, Rule, SegmentInput, TraitValue

JSONPATH_PREFIX = "$."


class Subject:
    """The identity as conditions see it during one evaluation.

    ``values`` holds the traits already normalised, so that a trait read by
    several conditions is coerced once.
    """

    __slots__ = ("identifier", "key", "traits", "values", "environment_key", "environment_name")

    def __init__(
        self,
        identifier: str,
        key: str,
        traits: Mapping[str, TraitValue | None],
        environment_key: str,
        environment_name: str,
    ) -> None:
        self.identifier = identifier
        self.key = key
        self.traits = traits
        self.values = normalise_traits(traits)
        self.environment_key = environment_key
        self.environment_name = environment_name


Reader = Callable[[Subject], ContextValue]
Check = Callable[[Subject], bool]


# ---- JSONPath ---------------------------------------------------------------
# A strict subset of RFC 9535 (as lexed by jsonpath_rfc9535): name shorthands,
# quoted names and indexes, with blanks allowed between segments only.
_NAME = r"[\u0080-\uFFFFa-zA-Z_][\u0080-\uFFFFa-zA-Z0-9_-]*"
_SEGMENT_RE = re.compile(
    rf"[ \n\r\t]*(?:\.(?P<name>{_NAME})"
    r"|\[[ \n\r\t]*(?:'(?P<sq>[^'\\]*)'|\"(?P<dq>[^\"\\]*)\"|(?P<index>-?[0-9]+))[ \n\r\t]*\])"
)
UNSUPPORTED: tuple[str, ...] = ("<unsupported>",)


def parse_jsonpath(path: str) -> tuple[str, ...] | None:
    """Split a ``$.``-path into member names.

    :param path: the property, starting with ``$.``
    :return: the names; ``UNSUPPORTED`` for syntax this subset does not resolve
        (it then reads as "not set" unless a trait has the literal name)
    """
    names: list[str] = []
    position = 1
    while position < len(path):
        match = _SEGMENT_RE.match(path, position)
        if match is None:
            return UNSUPPORTED
        if match["index"] is not None:
            # No array lives under $.identity or $.environment: nothing is found.
            names.append("[index]")
        else:
            names.append(match["name"] or match["sq"] or match["dq"] or "")
        position = match.end()
    return tuple(names)


def _path_getter(names: Sequence[str]) -> Reader | None:
    if len(names) == 2 and names[0] == "identity" and names[1] in ("identifier", "key"):
        attribute = names[1]
        return lambda subject: getattr(subject, attribute)
    if len(names) == 2 and names[0] == "environment" and names[1] in ("key", "name"):
        attribute = "environment_" + names[1]
        return lambda subject: getattr(subject, attribute)
    trait = _traits_path_key(names)
    if trait is not None:
        return lambda subject: subject.traits.get(trait)
    return None


def _traits_path_key(names: Sequence[str]) -> str | None:
    """The trait a ``$.identity.traits.<key>`` path reads, else None."""
    if len(names) == 3 and names[:2] == ("identity", "traits"):
        return names[2]
    return None


def describe_property(property_: str) -> str:
    """Return how a property is read: ``trait``, ``jsonpath`` or ``unsupported jsonpath``."""
    if not property_.startswith(JSONPATH_PREFIX):
        return "trait"
    names = parse_jsonpath(property_)
    if names is UNSUPPORTED or _path_getter(names or ()) is None:
        return "unsupported jsonpath"
    return "jsonpath"


def make_reader(property_: str, operator: str) -> Reader:
    """Build the function reading a condition's (normalised) value from the subject.

    :param property_: a trait key or a ``$.`` JSONPath
    :param operator: the condition operator (a split with a blank property reads the identity key)
    :return: a reader; None from it means "not set"
    """
    if reads_identity_key(operator, property_):
        # Legacy splits hash the raw identity key, never normalised.
        return lambda subject: subject.key
    if property_.startswith(JSONPATH_PREFIX):
        names = parse_jsonpath(property_)
        getter = _path_getter(names) if names is not None else None
        return _jsonpath_reader(property_, getter)
    return lambda subject: subject.values.get(property_)


def trait_key_of(property_: str, operator: str) -> str | None:
    """Return the trait key a condition reads directly, or None for other readers."""
    if property_.startswith(JSONPATH_PREFIX) or reads_identity_key(operator, property_):
        return None
    return property_


def trait_keys(rules: Sequence[Rule]) -> frozenset[str]:
    """Return every trait key the readers of these rules may look up (see ``make_reader``).

    A subject holding only these traits matches exactly as one holding them all.

    :param rules: segment rules, nested rules included
    :return: the trait keys
    """
    keys: set[str] = set()
    for rule in rules:
        keys.update(trait_keys(rule.rules))
        for condition in rule.conditions:
            prop = condition.property
            if reads_identity_key(condition.operator, prop):
                continue
            keys.add(prop)  # a trait key, or a trait literally named like the path
            if prop.startswith(JSONPATH_PREFIX):
                trait = _traits_path_key(parse_jsonpath(prop) or ())
                if trait is not None:
                    keys.add(trait)
    return frozenset(keys)


def _jsonpath_reader(property_: str, getter: Reader | None) -> Reader:
    def read(subject: Subject) -> ContextValue:
        # A trait literally named like the path wins over the path itself.
        value = subject.values.get(property_)
        if value is None and getter is not None:
            return normalise(getter(subject))
        return value

    return read


# ---- compiled rules ---------------------------------------------------------
class CompiledCondition:
    """A condition with its reader and predicate, plus the fused check."""

    __slots__ = ("condition", "segment_key", "read", "test", "trait_key", "check")

    def __init__(
        self, condition: Condition, segment_key: str, refused: frozenset[str] = frozenset()
    ) -> None:
        self.condition = condition
        self.segment_key = segment_key
        self.read = make_reader(condition.property, condition.operator)
        self.test: Predicate = build_predicate(
            condition.operator, condition.value, segment_key, refused
        )
        self.trait_key = trait_key_of(condition.property, condition.operator)
        read, test = self.read, self.test

        def check(subject: Subject) -> bool:
            return test(read(subject))

        self.check: Check = check


class CompiledRule:
    """A rule compiled into one check; quantifiers apply to conditions and sub-rules."""

    __slots__ = ("rule", "conditions", "rules", "check")

    def __init__(self, rule: Rule, segment_key: str, refused: frozenset[str] = frozenset()) -> None:
        self.rule = rule
        self.conditions = tuple(CompiledCondition(c, segment_key, refused) for c in rule.conditions)
        self.rules: tuple[CompiledRule, ...] = tuple(
            CompiledRule(r, segment_key, refused) for r in rule.rules
        )
        self.check: Check = _quantify(rule.type, self.conditions, self.rules)

    def flattened(self) -> tuple[list[CompiledCondition], list[CompiledRule]] | None:
        """Return the conditions and non-ALL sub-rules of an ALL tree, else None.

        ALL of ALL is ALL, so such trees are checked by one loop, not one call per rule.
        """
        if self.rule.type != "ALL":
            return None
        conditions, others = list(self.conditions), []
        for sub in self.rules:
            flat = sub.flattened()
            if flat is None:
                others.append(sub)
            else:
                conditions.extend(flat[0])
                others.extend(flat[1])
        return conditions, others


QUANTIFIER_NAMES = frozenset({"ALL", "ANY", "NONE"})


def _quantify(
    kind: str, conditions: Sequence[CompiledCondition], rules: Sequence[CompiledRule]
) -> Check:
    if kind not in QUANTIFIER_NAMES:
        # The engine raises KeyError on an unknown rule type; never matching is our mirror.
        return _never
    # Conditions have no side effects, so the order they run in cannot change
    # the verdict: plain trait reads go first, through one tight loop.
    pairs = tuple((c.trait_key, c.test) for c in conditions if c.trait_key is not None)
    others = tuple(c.check for c in conditions if c.trait_key is None)
    subrules = tuple(r.check for r in rules)
    if kind == "ALL":
        return _all_check(pairs, others, subrules)
    first = _any_check(pairs, others) if conditions else _always
    second = _any_check((), subrules) if subrules else _always
    if kind == "ANY":
        return _both(first, second)
    # NONE: no condition holds and no sub-rule holds (an empty list is satisfied).
    return _both(
        _negate(first) if conditions else _always, _negate(second) if subrules else _always
    )


def _all_check(
    pairs: tuple[tuple[str, Predicate], ...], others: tuple[Check, ...], subrules: tuple[Check, ...]
) -> Check:
    rest = others + subrules

    def check(subject: Subject) -> bool:
        get = subject.values.get
        for key, test in pairs:
            if not test(get(key)):
                return False
        for item in rest:  # noqa: SIM110 - a plain loop avoids a generator frame
            if not item(subject):
                return False
        return True

    return check


def _any_check(pairs: tuple[tuple[str, Predicate], ...], others: tuple[Check, ...]) -> Check:
    def check(subject: Subject) -> bool:
        get = subject.values.get
        for key, test in pairs:
            if test(get(key)):
                return True
        for item in others:  # noqa: SIM110 - see _all_check
            if item(subject):
                return True
        return False

    return check


def _both(first: Check, second: Check) -> Check:
    if first is _always:
        return second
    if second is _always:
        return first
    return lambda subject: first(subject) and second(subject)


def _negate(check: Check) -> Check:
    return lambda subject: not check(subject)


def _always(subject: Subject) -> bool:
    return True


class CompiledSegment:
    """A segment whose rules are compiled; ``index`` is its position in project order.

    REGEX conditions whose pattern is in ``refused`` never match (see ``build_predicate``).
    """

    __slots__ = ("segment", "key", "name", "index", "rules", "matches")

    def __init__(
        self, segment: SegmentInput, index: int, refused: frozenset[str] = frozenset()
    ) -> None:
        self.segment = segment
        self.key = segment.key
        self.name = segment.name
        self.index = index
        self.rules = tuple(CompiledRule(r, segment.key, refused) for r in segment.rules)
        # A segment without rules never matches.
        self.matches: Check = _segment_check(self.rules) if self.rules else _never


def _segment_check(rules: Sequence[CompiledRule]) -> Check:
    # Every top-level rule must hold: an ALL over the rules, flattened where
    # the rules are themselves ALL trees.
    conditions: list[CompiledCondition] = []
    others: list[CompiledRule] = []
    for rule in rules:
        flat = rule.flattened()
        if flat is None:
            others.append(rule)
        else:
            conditions.extend(flat[0])
            others.extend(flat[1])
    if not conditions and len(others) == 1:
        return others[0].check
    return _quantify("ALL", conditions, others)


def _never(subject: Subject) -> bool:
    return False


def is_in_segment(segment: CompiledSegment, subject: Subject) -> bool:
    """Return True when the subject satisfies every top-level rule of the segment.

    :param segment: a compiled segment
    :param subject: the identity being evaluated
    :return: membership
    """
    return segment.matches(subject)
