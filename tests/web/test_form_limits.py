"""Every form field with a length limit shows the limit and refuses more, never cuts text.

A ``maxlength`` attribute makes a browser cut pasted text silently (a 5,000-character
trait key became its first 200). Every dashboard form class is walked: each field with a
``Length`` limit renders without ``maxlength``, says its limit in a hint, and answers text
one character over the limit with an error that names the limit. A form or field added
later is covered without editing this test.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict

import webapp.forms
from tests.conftest import make_test_app
from webapp.forms.base import FlaskForm, Form, limit_hint, text_limit
from webapp.services import values


def _form_classes() -> list[type]:
    for module in pkgutil.iter_modules(webapp.forms.__path__):
        importlib.import_module(f"webapp.forms.{module.name}")
    found: list[type] = []
    pending = [FlaskForm, Form]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                found.append(sub)
                pending.append(sub)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _limited_fields() -> list[tuple[type, str, int]]:
    app = make_test_app("sqlite://")
    cases = []
    with app.test_request_context():
        for cls in _form_classes():
            form = cls(formdata=None, meta={"csrf": False})
            for name, field in form._fields.items():
                limit = text_limit(field)
                if limit is not None:
                    cases.append((cls, name, limit))
    return cases


def _has_kind(cls: type) -> bool:
    """Tell whether a form carries a typed value (a value field next to its type)."""
    return any(hasattr(cls, name) for name in ("value_type", "value_kind"))


LIMITED = _limited_fields()


@pytest.fixture(scope="module")
def form_app() -> Iterator[Flask]:
    app = make_test_app("sqlite://")
    with app.test_request_context():
        yield app


def test_the_walk_finds_the_forms_of_the_issue():
    names = {(cls.__name__, name) for cls, name, _ in LIMITED}
    assert {("TraitForm", "key"), ("TraitForm", "value"), ("OverrideValueForm", "value")} <= names
    assert len(LIMITED) > 20


@pytest.mark.parametrize(
    ("cls", "name", "limit"), LIMITED, ids=[f"{c.__name__}.{n}" for c, n, _ in LIMITED]
)
def test_limited_field__renders_its_limit_without_cutting(form_app, cls, name, limit):
    form = cls(formdata=None, meta={"csrf": False})
    html = str(form[name]())
    assert "maxlength" not in html
    assert f'data-max-length="{limit}"' in html
    if 'type="hidden"' not in html:
        assert limit_hint(limit) in html and f"{limit:,}" in limit_hint(limit)


@pytest.mark.parametrize(
    ("cls", "name", "limit"), LIMITED, ids=[f"{c.__name__}.{n}" for c, n, _ in LIMITED]
)
def test_limited_field__one_character_over__is_an_error_naming_the_limit(
    form_app, cls, name, limit
):
    form = cls(formdata=MultiDict({name: "x" * (limit + 1)}), meta={"csrf": False})
    form.validate()
    messages = " ".join(str(error) for error in form[name].errors)
    assert re.search(rf"\b({limit}|{limit:,})\b", messages), messages


TYPED = [(c, limit) for c, name, limit in LIMITED if name == "value" and _has_kind(c)]


@pytest.mark.parametrize(("cls", "limit"), TYPED, ids=[c.__name__ for c, _ in TYPED])
def test_typed_value_fields__take_their_limit_from_the_value_model(cls, limit):
    assert limit in (values.TRAIT_STRING_MAX, values.FLAG_STRING_MAX)


def test_trait_keys__take_their_limit_from_the_value_model():
    keys = [limit for c, name, limit in LIMITED if c.__name__ == "TraitForm" and name == "key"]
    assert keys == [values.TRAIT_KEY_MAX]
