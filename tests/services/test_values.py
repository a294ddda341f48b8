"""The one typed value model: every entry point gives the same answer for the same input.

Flag values are entered on four forms (identity override, segment override, feature
default, Users bulk override), trait values on the trait form and through the SDK API.
Each entry point is driven here as its view drives it (the form's own validation, then
the parse the view or service makes), and all of one thing must agree: the same value
of the same type, or a refusal. No database is needed: these are pure input rules.
"""

from __future__ import annotations

import ast
import math
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from tests.conftest import make_test_app
from webapp.forms.features import ValueForm
from webapp.forms.identities import OverrideValueForm, TraitForm
from webapp.forms.segments import SegmentOverrideForm
from webapp.forms.users import BulkActionForm
from webapp.services import values
from webapp.services.errors import ValidationError
from webapp.services.sdk.parsing import BadRequest, parse_traits

WEBAPP = pathlib.Path(__file__).resolve().parents[2] / "webapp"
Answer = tuple[str, ...]
REFUSED: Answer = ("refused",)


@pytest.fixture(scope="module")
def form_app() -> Iterator[Flask]:
    # Forms need a request context, not a database.
    app = make_test_app("sqlite://")
    with app.test_request_context():
        yield app


def _answer(parse: Callable[[], Any]) -> Answer:
    try:
        value = parse()
    except ValidationError:
        return REFUSED
    return ("accepted", type(value).__name__, repr(value))


def _form_answer(form: Any, parse: Callable[[Any], Any]) -> Answer:
    if not form.validate():
        return REFUSED
    return _answer(lambda: parse(form))


def _data(**fields: str) -> MultiDict[str, str]:
    return MultiDict(fields)


# ----------------------------------------------------------------------------- flags


def identity_override_form(kind: str, text: str) -> Answer:
    form = OverrideValueForm(formdata=_data(value=text, value_type=kind, version="1"))
    return _form_answer(
        form, lambda f: values.parse_value(f.value_type.data, f.value.data, values.FLAG)
    )


def segment_override_form(kind: str, text: str) -> Answer:
    form = SegmentOverrideForm(formdata=_data(feature_id="1", value=text, value_type=kind))
    return _form_answer(
        form, lambda f: values.parse_value(f.value_type.data, f.value.data, values.FLAG)
    )


def feature_default_form(kind: str, text: str) -> Answer:
    # The view passes ``form.value.data or ""`` to features.set_value.
    form = ValueForm(formdata=_data(value=text, value_kind=kind, version="1"))
    return _form_answer(
        form, lambda f: values.parse_value(f.value_kind.data, f.value.data or "", values.FLAG)
    )


def bulk_override_form(kind: str, text: str) -> Answer:
    form = BulkActionForm(
        formdata=_data(action="override", feature_id="1", value=text, value_type=kind)
    )
    return _form_answer(form, lambda f: f.typed_value)


FLAG_ENTRY_POINTS = [
    identity_override_form,
    segment_override_form,
    feature_default_form,
    bulk_override_form,
]

KINDS = st.sampled_from([*values.FLAG_KINDS, *values.TRAIT_KINDS, "none", "xml", ""])
EDGE_TEXTS = st.sampled_from(
    [
        "",
        " ",
        "007",
        "-0",
        "+1",
        "1_000",
        "1.5",
        "1e3",
        "١٢",
        " TRUE ",
        "False",
        "yes",
        "null",
        "nan",
        "[1, 2]",
        ' {"a": 1} ',
        "{",
        "[NaN]",
        "x\x00y",
        str(values.FLAG_INT_MAX),
        str(values.FLAG_INT_MAX + 1),
        str(values.FLAG_INT_MIN),
        str(values.FLAG_INT_MIN - 1),
        str(values.TRAIT_INT_MAX),
        str(values.TRAIT_INT_MAX + 1),
        "9" * 19,
        "9" * 5000,
        "s" * values.FLAG_STRING_MAX,
        "s" * (values.FLAG_STRING_MAX + 1),
        "s" * values.TRAIT_STRING_MAX,
        "s" * (values.TRAIT_STRING_MAX + 1),
    ]
)
TEXTS = st.one_of(
    EDGE_TEXTS,
    st.text(max_size=8),
    st.integers().map(str),
    st.floats().map(repr),
    st.builds(lambda pad, text: pad + text + pad, st.sampled_from(["", " ", "\t"]), EDGE_TEXTS),
)


@settings(max_examples=300, deadline=None)
@given(kind=KINDS, text=TEXTS)
def test_flag_entry_points__give_the_same_answer(form_app, kind, text):
    answers = {entry.__name__: entry(kind, text) for entry in FLAG_ENTRY_POINTS}
    assert len(set(answers.values())) == 1, answers


# ----------------------------------------------------------------------------- traits


def trait_form(kind: str, text: str) -> Answer:
    form = TraitForm(formdata=_data(key="plan", value=text, value_type=kind))
    return _form_answer(
        form, lambda f: values.parse_value(f.value_type.data, f.value.data, values.TRAIT)
    )


def sdk_trait(value: Any) -> Answer:
    try:
        (trait,) = parse_traits([{"trait_key": "plan", "trait_value": value}])
    except BadRequest:
        return REFUSED
    return ("accepted", type(trait.value).__name__, repr(trait.value))


SDK_VALUES = st.one_of(
    st.booleans(),
    st.integers(min_value=values.TRAIT_INT_MIN - 2, max_value=values.TRAIT_INT_MAX + 2),
    st.sampled_from([values.TRAIT_INT_MIN - 1, values.TRAIT_INT_MAX + 1, 2**53 + 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["", "  ", "x\x00", "s" * values.TRAIT_STRING_MAX]),
    st.sampled_from(["s" * (values.TRAIT_STRING_MAX + 1)]),
)


@settings(max_examples=300, deadline=None)
@given(value=SDK_VALUES)
def test_sdk_trait_and_trait_form__give_the_same_answer(form_app, value):
    # The trait form with the value's kind and its text says what the SDK says.
    kind = values.kind_of(value)
    assert trait_form(kind, values.as_text(value)) == sdk_trait(value)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(values.TRAIT_KINDS), text=TEXTS)
def test_trait_form__accepted_value__is_accepted_by_the_sdk_too(form_app, kind, text):
    answer = trait_form(kind, text)
    if answer != REFUSED:
        value = values.parse_value(kind, text, values.TRAIT)
        assert sdk_trait(value) == answer


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(["string", "integer", "boolean"]), text=TEXTS)
def test_trait_and_flag__agree_where_their_limits_agree(kind, text):
    # Within both limits (strings up to 2,000, integers within 2**53 - 1) the rules are one.
    try:
        flag = values.parse_value(kind, text, values.FLAG)
    except ValidationError:
        return
    if isinstance(flag, str) and len(flag) > values.TRAIT_STRING_MAX:
        return
    trait = values.parse_value(kind, text, values.TRAIT)
    assert (type(trait), trait) == (type(flag), flag)


# ----------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("kind", "text", "role", "expected"),
    [
        ("string", "  padded  ", values.FLAG, "  padded  "),  # strings are never stripped
        ("integer", " 007 ", values.FLAG, 7),
        ("integer", str(2**53 - 1), values.FLAG, 2**53 - 1),
        ("integer", str(2**63 - 1), values.TRAIT, 2**63 - 1),
        ("boolean", " False ", values.FLAG, False),
        ("json", ' {"a": [1]} ', values.FLAG, '{"a": [1]}'),
        ("null", "  ", values.FLAG, None),
        ("float", "2e3", values.TRAIT, 2000.0),
        ("infer", "42", values.TRAIT, 42),
        ("infer", " pro ", values.TRAIT, " pro "),
    ],
)
def test_parse_value__accepts(kind, text, role, expected):
    value = values.parse_value(kind, text, role)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("kind", "text", "role", "field"),
    [
        ("integer", str(2**53), values.FLAG, "value"),
        ("integer", "9" * 19, values.FLAG, "value"),  # the old 19-digit override rule
        ("integer", str(2**63), values.TRAIT, "value"),
        ("integer", "9" * 5000, values.TRAIT, "value"),
        ("float", "1.5", values.FLAG, "value_type"),  # flags have no float kind
        ("none", "", values.FLAG, "value_type"),  # "no value" is spelled null
        ("null", "5", values.FLAG, "value"),  # typed text is refused, never dropped
        ("json", "[NaN]", values.FLAG, "value"),
        ("string", "s" * 2001, values.TRAIT, "value"),
        ("string", "s" * 20_001, values.FLAG, "value"),
        ("float", "inf", values.TRAIT, "value"),
    ],
)
def test_parse_value__refuses_naming_the_field(kind, text, role, field):
    with pytest.raises(ValidationError) as caught:
        values.parse_value(kind, text, role)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("left", "right"),
    [(1, True), (1, 1.0), (0, False), (0.0, -0.0), ([1], [True]), ({"v": 1}, {"v": 1.0})],
)
def test_same__tells_python_equal_values_apart(left, right):
    assert left == right
    assert not values.same(left, right)
    assert values.identity_key(left) != values.identity_key(right)


def test_same__nan_is_itself():
    assert values.same(math.nan, math.nan)


def test_parse_value__is_defined_once_in_the_whole_app():
    # Four parse_value functions with different argument orders were the reason for values.
    found = [
        f"{path.relative_to(WEBAPP)}:{node.lineno}"
        for path in WEBAPP.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name in ("parse_value", "parse_typed_value", "infer_value", "kind_of")
    ]
    assert sorted(found) == sorted(
        f"services/values.py:{_line_of(f'def {name}(')}"
        for name in ("parse_value", "infer_value", "kind_of")
    )


def _line_of(text: str) -> int:
    lines = (WEBAPP / "services" / "values.py").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith(text))
