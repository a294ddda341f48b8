"""The test-only memos of tests/speedups.py give the same URL map as werkzeug's own code.

The ``app`` fixture's apps take their rules' parsed parts and URL builders from per-process
memos; an app made with werkzeug's own ``_parse_rule`` and ``_compile_builder`` must have the
same rules, converters, parts and traces, and build and match every rule the same way.
The ``heavy`` tests lead the collection (tests/conftest.py ``heavy_first``), longest first.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from werkzeug.routing import BaseConverter, Map, Rule, rules
from werkzeug.routing.converters import IntegerConverter, PathConverter, UnicodeConverter

from tests import speedups
from tests.conftest import dispose_engines, heavy_first, make_test_app
from webapp.ids import IdConverter

SAMPLE_VALUES: dict[type[BaseConverter], Any] = {
    IdConverter: 4711,
    IntegerConverter: 42,
    PathConverter: "one/two",
    UnicodeConverter: "some-name",
}


def describe(app: Flask) -> list[tuple[Any, ...]]:
    """Everything a rule holds after compiling, in the map's order."""
    described = []
    for rule in app.url_map.iter_rules():
        converters = [
            (name, type(converter), converter.regex, converter.weight, converter.part_isolating,
             {key: value for key, value in vars(converter).items() if key != "map"})
            for name, converter in rule._converters.items()
        ]  # fmt: skip
        for _name, converter in rule._converters.items():
            assert converter.map is app.url_map  # each app's converters are its own
        described.append((
            rule.rule, rule.endpoint, sorted(rule.methods or ()), sorted(rule.arguments),
            list(rule._trace), list(rule._parts), converters, rule.defaults,
        ))  # fmt: skip
    return described


def values_for(rule: Rule) -> dict[str, Any]:
    values = {}
    for name, converter in rule._converters.items():
        kind = next((k for k in type(converter).__mro__ if k in SAMPLE_VALUES), None)
        assert kind is not None, f"{rule.rule}: add a sample value for {type(converter)}"
        values[name] = SAMPLE_VALUES[kind]
    return values


def built_and_matched(app: Flask) -> list[tuple[Any, ...]]:
    """Build every rule's URL from sample values, and match that URL back."""
    adapter = app.url_map.bind("localhost")
    results = []
    for rule in app.url_map.iter_rules():
        values = values_for(rule)
        built = rule.build(values)
        with_query = rule.build({**values, "extra": "a b"}, append_unknown=True)
        assert built is not None
        method = sorted(rule.methods or {"GET"})[0]
        matched = adapter.match(built[1], method=method)
        results.append((rule.rule, built, with_query, method, matched))
    return results


def make_app() -> Flask:
    app = make_test_app("sqlite://")
    dispose_engines(app)
    return app


def test_memoised_rules__same_url_map_as_werkzeugs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    parse, build = rules.Rule._parse_rule, rules.Rule._compile_builder
    assert getattr(parse, "_flagpost_memo", False), "the rule-parsing memo is not installed"
    assert getattr(build, "_flagpost_memo", False), "the URL-builder memo is not installed"
    make_app()  # the memos have seen every rule
    memoised = make_app()
    assert all(rule.rule in speedups._PARSED for rule in memoised.url_map.iter_rules())

    monkeypatch.setattr(rules.Rule, "_parse_rule", parse._flagpost_original)
    monkeypatch.setattr(rules.Rule, "_compile_builder", build._flagpost_original)
    own = make_app()

    assert len(describe(own)) > 100
    assert describe(memoised) == describe(own)
    assert built_and_matched(memoised) == built_and_matched(own)
    for mine, theirs in zip(memoised.url_map.iter_rules(), own.url_map.iter_rules(), strict=True):
        assert mine._build is not theirs._build
        for part, their_part in zip(mine._parts, theirs._parts, strict=True):
            assert part is not their_part and part.weight.static_weights is not (
                their_part.weight.static_weights
            )


class LettersConverter(BaseConverter):
    regex = "[a-z]+"


class DigitsConverter(BaseConverter):
    regex = "[0-9]+"
    weight = 50


def test_memoised_rules__converter_of_another_regex__parses_as_werkzeug_does() -> None:
    letters = Map([Rule("/speedups/<thing:name>/x", endpoint="e")],
                  converters={"thing": LettersConverter})  # fmt: skip
    digits = Map([Rule("/speedups/<thing:name>/x", endpoint="e")],
                 converters={"thing": DigitsConverter})  # fmt: skip

    assert letters.bind("h").match("/speedups/abc/x") == ("e", {"name": "abc"})
    assert digits.bind("h").match("/speedups/123/x") == ("e", {"name": "123"})
    with pytest.raises(Exception, match="404"):
        digits.bind("h").match("/speedups/abc/x")
    (rule,) = digits.iter_rules()
    assert [part.weight.argument_weights for part in rule._parts] == [[], [], [], [50], []]
    assert type(rule._converters["name"]) is DigitsConverter


def test_memoised_rules__malformed_rule__refused_as_werkzeug_does() -> None:
    with pytest.raises(ValueError, match="malformed url rule"):
        Map([Rule("/speedups/<bad", endpoint="e")])


class FakeItem:
    def __init__(self, nodeid: str, *marks: pytest.MarkDecorator) -> None:
        self.nodeid = nodeid
        self.marks = {mark.mark.name: mark.mark for mark in marks}

    def get_closest_marker(self, name: str) -> Any:
        return self.marks.get(name)


def test_heavy_first__heavy_tests_lead_longest_first_rest_in_order() -> None:
    items = [
        FakeItem("a"), FakeItem("b", pytest.mark.heavy(seconds=12)), FakeItem("c"),
        FakeItem("d", pytest.mark.heavy(seconds=35)), FakeItem("e", pytest.mark.heavy(12)),
        FakeItem("f"),
    ]  # fmt: skip

    ordered = heavy_first(items)  # type: ignore[arg-type]

    assert [item.nodeid for item in ordered] == ["d", "b", "e", "a", "c", "f"]


@pytest.mark.parametrize(
    "mark",
    [pytest.mark.heavy, pytest.mark.heavy(seconds=0), pytest.mark.heavy(seconds=True),
     pytest.mark.heavy("10")],
)  # fmt: skip
def test_heavy_first__no_usable_duration__refused(mark: pytest.MarkDecorator) -> None:
    with pytest.raises(pytest.fail.Exception, match="heavy\\(seconds=N\\)"):
        heavy_first([FakeItem("x", mark)])  # type: ignore[list-item]


def test_heavy_first__in_an_xdist_group__refused() -> None:
    item = FakeItem("x", pytest.mark.heavy(seconds=5), pytest.mark.xdist_group("live"))
    with pytest.raises(pytest.fail.Exception, match="xdist_group"):
        heavy_first([item])  # type: ignore[list-item]
