"""Refuse REGEX patterns that backtrack catastrophically, and remember each verdict.

Python's ``re`` holds the GIL and cannot be interrupted from another thread, so a pattern
like ``(a+)+$`` against a 2,000-character trait would stall the worker for ever. Two
checks decide whether a pattern is *refused*:

1. a static look at the parse tree: a repeated group (``*``, ``+``, ``{3,}``) holding a
   variable-width part (``a+``, ``\\s?``, ``a|aa``) and nothing mandatory that part cannot
   match, so one input splits into iterations in exponentially many ways (``(a+)+``,
   ``(\\w+\\s?)*``, ``(x+x+)+y``, ``(.*a){12}``), is refused without running;
2. a probe: ``re.match`` against adversarial 2,000-character subjects derived from the
   pattern (what its repeats accept, then a character that makes the match fail), run in a
   reusable child process under a CPU-time budget; a pattern needing more is refused.

Saving (dashboard builder, document import) refuses such patterns. Patterns that reach
the database anyway (saved before this guard, or by SQL) are handed to the evaluation
module as ``EnvironmentSnapshot.refused_patterns``: they never match there. That is a
deliberate difference from the official engine, which would hang; every accepted pattern
evaluates exactly as it does. Verdicts are cached per pattern for the process's life.
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..evaluation import EnvironmentSnapshot, Rule, RuleError
from ..evaluation.operators import REGEX

log = logging.getLogger(__name__)

MESSAGE = (
    "this regular expression can take too long on long values "
    "(catastrophic backtracking); simplify it"
)
SUBJECT_LENGTH = 2000  # SPEC: trait strings and identifiers hold at most 2,000 characters
PROBE_BUDGET = 0.1  # CPU seconds for all of a pattern's subjects together
PROBE_DEADLINE = 5.0  # wall seconds before a probe that never answers is killed
MAX_SUBJECTS = 60
CACHE_MAX = 4096

_PARSER: Any = importlib.import_module("re._parser")
_MAXREPEAT = int(_PARSER.MAXREPEAT)
_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT"})
# Lookarounds, atomic groups and possessive repeats never backtrack into themselves.
_ATOMIC = frozenset({"ATOMIC_GROUP", "POSSESSIVE_REPEAT", "ASSERT", "ASSERT_NOT"})
_PREFERRED = "a0 xA_-.@!"
_TERMINATORS = "!\x00\nx0"
_EXTRA_CHARS = "\t\n\r\x00\x0b\x0c\u00e9\u00df\u03a9\u4e2d\u0663\u00a0\u2028\U0001f600"
_CATEGORIES = {
    "CATEGORY_DIGIT": re.compile(r"\d"),
    "CATEGORY_NOT_DIGIT": re.compile(r"\D"),
    "CATEGORY_SPACE": re.compile(r"\s"),
    "CATEGORY_NOT_SPACE": re.compile(r"\S"),
    "CATEGORY_WORD": re.compile(r"\w"),
    "CATEGORY_NOT_WORD": re.compile(r"\W"),
    "CATEGORY_LINEBREAK": re.compile(r"\n"),
    "CATEGORY_NOT_LINEBREAK": re.compile(r"[^\n]"),
}
Item = tuple[Any, Any]


# ---- the parse tree ---------------------------------------------------------------
def _name(item: Item) -> str:
    return str(item[0])


def _children(item: Item) -> list[Sequence[Item]]:
    name, value = _name(item), item[1]
    if name == "SUBPATTERN":
        return [value[3]]
    if name in _REPEATS or name == "POSSESSIVE_REPEAT":
        return [value[2]]
    if name == "BRANCH":
        return list(value[1])
    if name in ("ATOMIC_GROUP",):
        return [value]
    if name in ("ASSERT", "ASSERT_NOT"):
        return [value[1]]
    if name == "GROUPREF_EXISTS":
        return [value[1]] + ([value[2]] if value[2] else [])
    return []


def _walk(items: Iterable[Item]) -> Iterator[Item]:
    for item in items:
        yield item
        for child in _children(item):
            yield from _walk(child)


class _Tree:
    """A parsed pattern, with the characters its checks compare and case folding."""

    def __init__(self, pattern: str) -> None:
        parsed = _PARSER.parse(pattern)
        self.items: list[Item] = list(parsed)
        self.fold = bool(parsed.state.flags & re.IGNORECASE)
        literals = {chr(v) for op, v in _leaves(self.items) if str(op) == "LITERAL"}
        self.literals = sorted(literals)
        self.universe = frozenset(
            [chr(c) for c in range(0x20, 0x7F)] + list(_EXTRA_CHARS) + self.literals
        )
        self._sets: dict[int, frozenset[str]] = {}  # character classes, by id of the node

    def variants(self, char: str) -> set[str]:
        """Return the characters a literal matches (its case variants under IGNORECASE)."""
        return {char, char.lower(), char.upper(), char.swapcase()} if self.fold else {char}

    def chars(self, items: Iterable[Item]) -> frozenset[str]:
        """Return every character (of the universe) the items can consume."""
        found: set[str] = set()
        for item in _walk(items):
            found |= self._leaf_chars(item)
        return frozenset(found)

    def _leaf_chars(self, item: Item) -> set[str] | frozenset[str]:
        name, value = _name(item), item[1]
        if name == "LITERAL":
            return self.variants(chr(value))
        if name == "NOT_LITERAL":
            return self.universe - self.variants(chr(value))
        if name in ("ANY", "GROUPREF"):
            return self.universe
        if name == "IN":
            found = self._sets.get(id(value))
            if found is None:
                found = frozenset(c for c in self.universe if self._in_set(value, c))
                self._sets[id(value)] = found
            return found
        return set()

    def _in_set(self, members: Sequence[Item], char: str) -> bool:
        negate = any(str(op) == "NEGATE" for op, _ in members)
        hit = any(_member(op, value, c) for op, value in members for c in self.variants(char))
        return hit != negate

    def sample(self, chars: Iterable[str]) -> str:
        """Pick a deterministic representative of a character set ('' when empty)."""
        pool = set(chars)
        for char in _PREFERRED:
            if char in pool:
                return char
        return min(pool) if pool else ""

    def example(self, items: Iterable[Item]) -> str:
        """Return a short string the items match (approximately: lookarounds are ignored)."""
        return "".join(self._example_of(item) for item in items)[:SUBJECT_LENGTH]

    def _example_of(self, item: Item) -> str:
        name, value = _name(item), item[1]
        if name in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
            return self.sample(self._leaf_chars(item))
        if name in _REPEATS or name == "POSSESSIVE_REPEAT":
            once = self.example(value[2])
            return once * min(int(value[0]), SUBJECT_LENGTH // max(len(once), 1))
        children = _children(item)
        if name in ("ASSERT", "ASSERT_NOT") or not children:
            return ""
        return self.example(children[0])


def _leaves(items: Iterable[Item]) -> Iterator[Item]:
    for item in _walk(items):
        if _name(item) == "IN":
            yield from item[1]
        else:
            yield item


def _member(op: Any, value: Any, char: str) -> bool:
    name = str(op)
    if name == "LITERAL":
        return chr(value) == char
    if name == "RANGE":
        return bool(value[0] <= ord(char) <= value[1])
    if name == "CATEGORY":
        test = _CATEGORIES.get(str(value))
        return test is None or test.match(char) is not None
    return False


def _width(items: Iterable[Item]) -> tuple[int, int]:
    low = high = 0
    for item in items:
        item_low, item_high = _item_width(item)
        low, high = low + item_low, min(high + item_high, _MAXREPEAT)
    return low, high


def _item_width(item: Item) -> tuple[int, int]:
    name, value = _name(item), item[1]
    if name in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
        return 1, 1
    if name == "GROUPREF":
        return 0, _MAXREPEAT
    if name in _REPEATS or name == "POSSESSIVE_REPEAT":
        low, high = _width(value[2])
        return int(value[0]) * low, min(int(value[1]) * high, _MAXREPEAT)
    if name in ("ASSERT", "ASSERT_NOT", "AT"):
        return 0, 0
    widths = [_width(child) for child in _children(item)] or [(0, 0)]
    if name == "GROUPREF_EXISTS" and len(widths) == 1:
        widths.append((0, 0))
    return min(w[0] for w in widths), max(w[1] for w in widths)


# ---- 1. static check --------------------------------------------------------------
def has_nested_quantifier(pattern: str) -> bool:
    """Tell whether a repeated group can split one input in exponentially many ways.

    :param pattern: a pattern that compiles
    :return: True for ``(a+)+``, ``(a|aa)+``, ``(\\w+\\s?)*``, ``(.*a){12}`` and the like
    """
    tree = _Tree(pattern)
    for item in _walk(tree.items):
        if _name(item) in _REPEATS and int(item[1][1]) >= 3 and _ambiguous(tree, item[1][2]):
            return True
    return False


def _flatten(items: Iterable[Item]) -> list[Item]:
    flat: list[Item] = []
    for item in items:
        if _name(item) == "SUBPATTERN":
            flat.extend(_flatten(item[1][3]))
        else:
            flat.append(item)
    return flat


def _variable_parts(items: Iterable[Item]) -> Iterator[Item]:
    for item in items:
        name = _name(item)
        if name in _ATOMIC:
            continue
        low, high = _item_width(item)
        if (name in _REPEATS or name == "BRANCH") and high > low:
            yield item
        for child in _children(item):
            yield from _variable_parts(child)


def _ambiguous(tree: _Tree, body: Sequence[Item]) -> bool:
    # An iteration is unambiguous when something it must consume cannot be consumed by
    # the variable part: that separator pins where one iteration ends.
    sequence = _flatten(body)
    for part in _variable_parts(body):
        spread = tree.chars([part])
        if spread and not any(
            _item_width(item)[0] >= 1 and not tree.chars([item]) & spread for item in sequence
        ):
            return True
    return False


# ---- 2. probe ---------------------------------------------------------------------
def probe_subjects(pattern: str) -> list[str]:
    """Build the adversarial subjects a pattern is probed with (at most 2,000 characters).

    :param pattern: a pattern that compiles
    :return: subjects: a prefix the pattern needs, a pump its repeats accept, then a
        character meant to make the match fail
    """
    tree = _Tree(pattern)
    found: dict[str, None] = {}
    pairs = list(_pumps(tree, tree.items, ""))
    pairs += [("", char) for char in ["a", "0", " ", "ab", *tree.literals[:8]]]
    for prefix, pump in pairs:
        for subject in _fill(prefix, pump):
            found.setdefault(subject)
    return list(found)[:MAX_SUBJECTS]


def _pumps(tree: _Tree, items: Sequence[Item], prefix: str) -> Iterator[tuple[str, str]]:
    running = prefix
    for item in items:
        if len(running) >= SUBJECT_LENGTH:
            return
        name = _name(item)
        if name in _REPEATS or name == "POSSESSIVE_REPEAT":
            body = item[1][2]
            yield running, tree.example(body)
            for alternative in (c for b in body if _name(b) == "BRANCH" for c in _children(b)):
                yield running, tree.example(body[:1]) + tree.example(alternative)
            chars = set(tree.chars(body))
            for _ in range(2):
                char = tree.sample(chars)
                chars.discard(char)
                yield running, char
        for child in _children(item):
            yield from _pumps(tree, child, running)
        running += tree.example([item])


def _fill(prefix: str, pump: str) -> Iterator[str]:
    if not pump:
        return
    body = (prefix + pump * (SUBJECT_LENGTH // len(pump) + 1))[: SUBJECT_LENGTH - 1]
    yield body
    for terminator in [t for t in _TERMINATORS if t not in pump][:2]:
        yield body + terminator


# The child only needs the standard library: it starts in milliseconds. SIGPROF counts CPU
# time, so a loaded machine does not turn a fast pattern slow; _sre checks for signals
# while matching, so the alarm interrupts even a runaway match.
_CHILD = r"""
import json, re, signal, sys

class Slow(Exception):
    pass

def alarm(signum, frame):
    raise Slow

def probe(job):
    try:
        pattern = re.compile(job["pattern"])
    except (re.error, RecursionError, OverflowError, ValueError):
        return "invalid"
    try:
        signal.setitimer(signal.ITIMER_PROF, job["budget"])
        for subject in job["subjects"]:
            pattern.match(subject)
        signal.setitimer(signal.ITIMER_PROF, 0)
    except Slow:
        return "slow"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    return "fast"

signal.signal(signal.SIGPROF, alarm)
for line in sys.stdin:
    try:
        verdict = probe(json.loads(line))
    except Slow:
        verdict = "slow"
    except Exception:
        verdict = "error"
    sys.stdout.write(json.dumps(verdict) + "\n")
    sys.stdout.flush()
"""


class _Prober:
    """One reusable child process per worker process, killed and restarted on overrun."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._owner = 0

    def run(self, pattern: str, subjects: list[str]) -> str:
        """Match the subjects in the child; return fast, slow, invalid, error or timeout.

        :raises OSError: when no child process can be started
        """
        job = json.dumps({"pattern": pattern, "subjects": subjects, "budget": PROBE_BUDGET})
        with self._lock:
            try:
                return self._ask(job)
            except (BrokenPipeError, ValueError):
                # The child died between two probes: start a new one and ask once more.
                self.stop()
                return self._ask(job)

    def _ask(self, job: str) -> str:
        process = self._child()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(job + "\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], PROBE_DEADLINE)
        line = process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            return "timeout" if not ready else "error"
        return str(json.loads(line))

    def _child(self) -> subprocess.Popen[str]:
        # A forked server worker must not share its parent's child (and its pipes).
        if self._process is None or self._owner != os.getpid() or self._process.poll() is not None:
            self._process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed code
                [sys.executable, "-I", "-S", "-c", _CHILD],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
            )
            self._owner = os.getpid()
        return self._process

    def forget(self) -> None:
        """Drop the parent's child and lock in a freshly forked process (never kill them)."""
        self._lock = threading.Lock()
        self._process = None

    def stop(self) -> None:
        """Kill the child process (if this process started it)."""
        process, self._process = self._process, None
        if process is not None and self._owner == os.getpid() and process.poll() is None:
            process.kill()
            process.wait(timeout=5)


_PROBER = _Prober()
atexit.register(_PROBER.stop)
os.register_at_fork(after_in_child=_PROBER.forget)


# ---- verdicts ---------------------------------------------------------------------
_verdicts: dict[str, bool] = {}
_verdicts_lock = threading.Lock()


def pattern_problem(pattern: str) -> str | None:
    """Return why a REGEX pattern is refused, or None when it is accepted.

    Patterns that do not compile are not this guard's business (validation reports them
    and they never match); they are accepted here.

    :param pattern: the condition value, as the engine reads it (``str(value)``)
    :return: a message for the dashboard or the import error, or None
    """
    return MESSAGE if is_refused(pattern) else None


def is_refused(pattern: str) -> bool:
    """Tell whether a pattern backtracks catastrophically (cached per process).

    :param pattern: the condition value as text
    :return: True when the static check or the probe refuses it
    """
    cached = _verdicts.get(pattern)
    if cached is not None:
        return cached
    verdict = _decide(pattern)
    if verdict is None:
        return False  # no probe could run: accept for now, ask again next time
    with _verdicts_lock:
        if len(_verdicts) >= CACHE_MAX:
            _verdicts.clear()
        _verdicts[pattern] = verdict
    return verdict


def _decide(pattern: str) -> bool | None:
    try:
        re.compile(pattern)
        if has_nested_quantifier(pattern):
            return True
        subjects = probe_subjects(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return False  # invalid: it never matches, so it cannot be slow
    try:
        outcome = _PROBER.run(pattern, subjects)
    except OSError:
        log.warning("regex probe unavailable; pattern %r only checked statically", pattern)
        return None
    if outcome not in ("fast", "invalid"):
        log.warning("regex pattern %r refused: probe %s", pattern, outcome)
    return outcome not in ("fast", "invalid")


def regex_values(rules: Iterable[Rule]) -> Iterator[tuple[tuple[int | str, ...], str]]:
    """Yield the path (as ``validate_rules`` spells it) and pattern of every REGEX condition.

    :param rules: top-level rules
    :return: (path, pattern) pairs
    """
    yield from _regex_values(rules, ("rules",))


def _regex_values(
    rules: Iterable[Rule], path: tuple[int | str, ...]
) -> Iterator[tuple[tuple[int | str, ...], str]]:
    for index, rule in enumerate(rules):
        for position, condition in enumerate(rule.conditions):
            if condition.operator == REGEX:
                yield (*path, index, "conditions", position), str(condition.value)
        yield from _regex_values(rule.rules, (*path, index, "rules"))


def rule_problems(rules: Sequence[Rule]) -> list[RuleError]:
    """Report every REGEX condition whose pattern is refused.

    :param rules: a segment's top-level rules
    :return: one error per refused condition, paths as in ``validate_rules``
    """
    found = regex_values(rules)
    return [RuleError(path, MESSAGE) for path, pattern in found if is_refused(pattern)]


def refused_patterns(rules: Iterable[Rule]) -> frozenset[str]:
    """Return the refused patterns among the rules' REGEX conditions (for evaluation).

    :param rules: rules of one or more segments
    :return: patterns the evaluation module must treat as never matching
    """
    return frozenset(pattern for _, pattern in regex_values(rules) if is_refused(pattern))


def with_refusals(snapshot: EnvironmentSnapshot) -> EnvironmentSnapshot:
    """Return the snapshot with its refused patterns filled in, ready to compile.

    :param snapshot: an environment snapshot
    :return: the same snapshot, ``refused_patterns`` set
    """
    refused = refused_patterns(rule for segment in snapshot.segments for rule in segment.rules)
    return dataclasses.replace(snapshot, refused_patterns=refused) if refused else snapshot
