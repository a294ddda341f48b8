"""The identity search query language: tokens, parsed-query dataclasses, parse errors.

Query language (clauses joined by ``and``)::

    alice              identifier starts with "alice"
    "alice"            identifier is exactly "alice"
    ~lic               identifier contains "lic" (case-insensitive)
    plan = pro         also != > >= < <= (numbers compare numerically, "007" = 7)
    country in (DE, FR)
    email ~ @acme.com  trait contains (case-insensitive)
    beta is set        / beta is not set

Unquoted ``true``/``false`` are booleans, unquoted numbers are numbers, anything quoted is a
string. The operators and their spellings come from the operator registry (``Operator.search``)
and a parsed condition names its operator as the registry does (``EQUAL``, ``IN``, ...).
Pure parsing, no database: ``search_sql`` turns the result into SQL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ...evaluation.operators import (
    GREATER_THAN,
    GREATER_THAN_INCLUSIVE,
    IN,
    LESS_THAN,
    LESS_THAN_INCLUSIVE,
    OPERATORS,
)
from .. import humanize
from ..errors import ValidationError

MAX_QUERY_LENGTH = 1000
MAX_CLAUSES = 12
# The search language's spellings, from the registry: "=" -> EQUAL, "is set" -> IS_SET, ...
SPELLINGS: dict[str, str] = {o.search: o.name for o in OPERATORS.values() if o.search}
_SYMBOLS = {spelling: name for spelling, name in SPELLINGS.items() if not spelling[0].isalpha()}
# The ones written with words, as word tuples: ("is", "not", "set") -> IS_NOT_SET.
_WORDS = {
    tuple(spelling.split()): name for spelling, name in SPELLINGS.items() if spelling[0].isalpha()
}
# Ordering compares numbers only (the search reads a trait's number, never its text).
_ORDERED = frozenset({GREATER_THAN, GREATER_THAN_INCLUSIVE, LESS_THAN, LESS_THAN_INCLUSIVE})
NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_OP_CHARS = "".join(sorted(set("".join(_SYMBOLS))))
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>"""
    + "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
    + r"""|\(|\)|,)
      | (?P<word>[^\s"'"""
    + re.escape(_OP_CHARS)
    + r"""!(),]+)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_HELP = "expected an identifier, “key = value”, “key in (a, b)”, “key ~ text” or “key is set”"


@dataclass(frozen=True)
class Literal:
    """A typed value from the query: ``kind`` is string, number or boolean."""

    kind: str
    text: str
    number: float | None = None


@dataclass(frozen=True)
class Condition:
    """One trait condition; ``op`` is the registry's operator name (``EQUAL``, ``IN``, ...)."""

    key: str
    op: str
    values: tuple[Literal, ...] = ()


@dataclass(frozen=True)
class IdentifierTerm:
    """The identifier filter; ``mode`` is prefix, exact or contains."""

    text: str
    mode: str


@dataclass(frozen=True)
class ParsedQuery:
    identifier: IdentifierTerm | None = None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if match is None:  # only trailing whitespace is left
            break
        kind = match.lastgroup or "bad"
        start = match.start(kind)
        raw = match.group(kind)
        if kind == "bad":
            if raw in "\"'":
                raise ValidationError(f"Unclosed quote {raw} at character {start + 1}.", "q")
            shown = humanize.value_text(raw)
            raise ValidationError(f"Unexpected {shown} at character {start + 1}.", "q")
        text_ = _unquote(raw) if kind == "string" else raw
        tokens.append(_Token(kind, text_, start))
        pos = match.end()
    return tokens


def _literal(token: _Token) -> Literal:
    if token.kind == "string":
        return Literal("string", token.text)
    if token.text.lower() in ("true", "false"):
        return Literal("boolean", token.text.lower())
    if NUMBER.fullmatch(token.text):
        return Literal("number", token.text, float(token.text))
    return Literal("string", token.text)


def _split_clauses(tokens: list[_Token]) -> list[list[_Token]]:
    clauses: list[list[_Token]] = [[]]
    for token in tokens:
        if token.kind == "word" and token.text.lower() == "and":
            clauses.append([])
        elif token.kind == "word" and token.text.lower() == "or":
            raise ValidationError("Only “and” can combine conditions; “or” is not supported.", "q")
        else:
            clauses[-1].append(token)
    if len(clauses) > 1 and any(not clause for clause in clauses):
        raise ValidationError("“and” needs a condition on both sides.", "q")
    if len(clauses) > MAX_CLAUSES:
        raise ValidationError(f"At most {MAX_CLAUSES} conditions can be combined.", "q")
    return [clause for clause in clauses if clause]


def _is_value(token: _Token) -> bool:
    return token.kind in ("word", "string")


def _describe(clause: list[_Token]) -> str:
    return " ".join(t.text if t.kind != "string" else json.dumps(t.text) for t in clause)


def _parse_in(key: str, rest: list[_Token], shown: str) -> Condition:
    if len(rest) < 3 or rest[0].text != "(" or rest[-1].text != ")":
        raise ValidationError(f"“{shown}”: write the list as “key in (a, b)”.", "q")
    inner = rest[1:-1]
    values = inner[0::2]
    commas = inner[1::2]
    if not all(_is_value(v) for v in values) or any(c.text != "," for c in commas):
        raise ValidationError(f"“{shown}”: separate the values with commas.", "q")
    if len(inner) % 2 == 0:
        raise ValidationError(f"“{shown}”: a value is missing after the last comma.", "q")
    return Condition(key, IN, tuple(_literal(v) for v in values))


def _parse_comparison(key: str, spelling: str, value: _Token, shown: str) -> Condition:
    literal = _literal(value)
    name = _SYMBOLS[spelling]
    if name in _ORDERED and literal.kind != "number":
        raise ValidationError(
            f"“{shown}”: {spelling} compares numbers, and “{value.text}” is not one.", "q"
        )
    return Condition(key, name, (literal,))


def _parse_condition(clause: list[_Token]) -> Condition:
    shown = _describe(clause)
    key_token, rest = clause[0], clause[1:]
    if not _is_value(key_token) or not rest:
        raise ValidationError(f"Could not read “{shown}”: {_HELP}.", "q")
    key = key_token.text
    if not key or len(key) > 200:
        raise ValidationError(f"“{shown}”: a trait key has 1 to 200 characters.", "q")
    words = tuple(t.text.lower() if t.kind == "word" else "" for t in rest)
    if words in _WORDS and not OPERATORS[_WORDS[words]].takes_value:
        return Condition(key, _WORDS[words])
    if _WORDS.get(words[:1]) == IN:
        return _parse_in(key, rest[1:], shown)
    operator = rest[0].text if rest[0].kind == "op" else ""
    if len(rest) == 2 and operator in _SYMBOLS and _is_value(rest[1]):
        return _parse_comparison(key, operator, rest[1], shown)
    raise ValidationError(f"Could not read “{shown}”: {_HELP}.", "q")


def _parse_identifier(clause: list[_Token]) -> IdentifierTerm | None:
    if len(clause) == 1 and _is_value(clause[0]):
        mode = "exact" if clause[0].kind == "string" else "prefix"
        return IdentifierTerm(clause[0].text, mode)
    if len(clause) == 2 and clause[0].text == "~" and _is_value(clause[1]):
        return IdentifierTerm(clause[1].text, "contains")
    return None


def parse_query(query: str) -> ParsedQuery:
    """Parse a search box query into an identifier term and trait conditions.

    :param query: the text typed in the search box.
    :return: the parsed query (empty when the text is blank).
    :raises ValidationError: with a message naming the malformed part (field ``q``).
    """
    if len(query) > MAX_QUERY_LENGTH:
        raise ValidationError(f"A search has at most {MAX_QUERY_LENGTH} characters.", "q")
    identifier: IdentifierTerm | None = None
    conditions: list[Condition] = []
    for clause in _split_clauses(_tokenize(query)):
        term = _parse_identifier(clause)
        if term is None:
            conditions.append(_parse_condition(clause))
        elif identifier is not None:
            raise ValidationError(
                f"Only one identifier term is allowed (“{identifier.text}” and “{term.text}”); "
                "quote identifiers that contain spaces.",
                "q",
            )
        elif term.text:
            identifier = term
    return ParsedQuery(identifier, tuple(conditions))
