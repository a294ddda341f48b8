"""Benchmark: all flags for one identity, Flagpost's engine vs flagsmith-flag-engine.

Run as ``python bench/evaluation.py``. Both engines evaluate the same Flagsmith
environment document: 50 features (10 multivariate), 20 segments of 1-2 rules
with 3 mixed conditions each, 15 segment overrides, 3 identity overrides, and
identities with 10 traits. Flagpost's snapshot is compiled once; the official
engine gets its context built once, with only the identity part changing. Inputs
for each identity are built before timing; each call is timed on its own and the
medians are printed. The last line is the speedup.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flag_engine.engine import get_evaluation_result  # noqa: E402
from flagsmith.mappers import map_environment_document_to_context  # noqa: E402

from webapp.evaluation import (  # noqa: E402
    IdentityInput,
    compile_snapshot,
    evaluate,
    snapshot_from_document,
)

IDENTITIES = 3000
CHUNK = 100
PLANS = ["free", "pro", "enterprise"]
COUNTRIES = ["uk", "fr", "de", "us", "es"]


def _state(feature_id: int, state_id: int, value: Any, variants: int = 0) -> dict[str, Any]:
    mv = [
        {
            "id": state_id * 10 + i,
            "percentage_allocation": 30,
            "multivariate_feature_option": {"value": f"variant-{i}"},
        }
        for i in range(variants)
    ]
    return {
        "feature": {"id": feature_id, "name": f"feature_{feature_id}", "type": "STANDARD"},
        "django_id": state_id,
        "featurestate_uuid": f"00000000-0000-4000-8000-{state_id:012d}",
        "enabled": feature_id % 3 != 0,
        "feature_state_value": value,
        "multivariate_feature_state_values": mv,
    }


def _conditions(rng: random.Random) -> list[dict[str, Any]]:
    pool: list[dict[str, Any]] = [
        {"property_": "plan", "operator": "EQUAL", "value": rng.choice(PLANS)},
        {"property_": "age", "operator": "GREATER_THAN", "value": str(rng.randint(18, 60))},
        {"property_": "country", "operator": "IN", "value": "uk,fr,de"},
        {"property_": "email", "operator": "REGEX", "value": r".*@example\.com$"},
        {"property_": "app_version", "operator": "GREATER_THAN_INCLUSIVE", "value": "2.1.0:semver"},
        {"property_": "beta", "operator": "EQUAL", "value": "true"},
        {"property_": "logins", "operator": "MODULO", "value": "2|0"},
        {"property_": "company", "operator": "CONTAINS", "value": "Corp"},
        {"property_": "score", "operator": "LESS_THAN", "value": "50.5"},
        {"property_": "", "operator": "PERCENTAGE_SPLIT", "value": "40"},
        {"property_": "team", "operator": "IS_SET", "value": None},
        {"property_": "$.identity.identifier", "operator": "NOT_CONTAINS", "value": "test"},
    ]
    return rng.sample(pool, 3)


def build_document(
    features: int,
    multivariate: int,
    segments: int,
    overrides: int,
    identity_overrides: int,
    seed: int = 7,
) -> dict[str, Any]:
    """Build a Flagsmith environment document of the given shape."""
    rng = random.Random(seed)
    states = [
        _state(i, 1000 + i, f"value-{i}", variants=3 if i <= multivariate else 0)
        for i in range(1, features + 1)
    ]
    project_segments: list[dict[str, Any]] = []
    for s in range(1, segments + 1):
        rules = [
            {"type": rng.choice(["ALL", "ANY"]), "conditions": _conditions(rng), "rules": []}
            for _ in range(rng.randint(1, 2))
        ]
        project_segments.append(
            {"id": s, "name": f"segment_{s}", "rules": rules, "feature_states": []}
        )
    for o in range(overrides):
        feature_id = rng.randint(1, features)
        state = _state(feature_id, 5000 + o, f"override-{o}")
        state["feature_segment"] = {"priority": rng.randint(0, 5)}
        project_segments[o % segments]["feature_states"].append(state)
    return {
        "api_key": "bench_client_key",
        "name": "Production",
        "feature_states": states,
        "project": {"id": 1, "name": "bench", "segments": project_segments},
        "identity_overrides": [
            {
                "identifier": f"user-{i}",
                "identity_features": [_state(i + 1, 9000 + i, "identity-override")],
            }
            for i in range(identity_overrides)
        ],
    }


def build_traits(rng: random.Random) -> dict[str, Any]:
    """Build 10 mixed-type traits."""
    return {
        "plan": rng.choice(PLANS),
        "age": rng.randint(16, 70),
        "country": rng.choice(COUNTRIES),
        "email": rng.choice(["a@example.com", "b@other.org"]),
        "app_version": rng.choice(["2.0.9", "2.1.0", "2.1.0-beta.1", "3.0.0"]),
        "beta": rng.choice([True, False]),
        "logins": str(rng.randint(0, 100)),
        "company": rng.choice(["Acme Corp", "Globex"]),
        "score": rng.uniform(0, 100),
        "team": rng.choice(["red", "blue"]),
    }


def _time_calls(function: Callable[[Any], object], inputs: list[Any]) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    for item in inputs:
        start = clock()
        function(item)
        samples.append(clock() - start)
    return samples


def _median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def bench_speed() -> tuple[float, float, float]:
    """Time both engines over the same identities; return medians in microseconds."""
    doc = build_document(50, 10, 20, 15, 3)
    compiled = compile_snapshot(snapshot_from_document(doc))
    context = map_environment_document_to_context(doc)  # type: ignore[arg-type]
    rng = random.Random(42)
    people = [(f"user-{i}", build_traits(rng)) for i in range(IDENTITIES)]
    ours_inputs = [IdentityInput(identifier, traits) for identifier, traits in people]
    official_inputs = [
        {**context, "identity": {"identifier": identifier, "traits": traits}}
        for identifier, traits in people
    ]
    ours: list[int] = []
    ours_with_segments: list[int] = []
    official: list[int] = []
    # Same treatment for both engines: they alternate over chunks of the same
    # identities (so a load spike on a shared machine hits both), each chunk in
    # its own loop (so neither evicts the other's data from CPU caches in
    # between calls), with the cyclic GC paused so that a collection triggered
    # by one engine's garbage never lands in the other's timing.
    gc.collect()
    gc.disable()
    try:
        for start_index in range(0, len(people), CHUNK):
            chunk = slice(start_index, start_index + CHUNK)
            ours.extend(_time_calls(lambda i: evaluate(compiled, i), ours_inputs[chunk]))
            ours_with_segments.extend(
                _time_calls(lambda i: evaluate(compiled, i).segments, ours_inputs[chunk])
            )
            official.extend(_time_calls(get_evaluation_result, official_inputs[chunk]))
            gc.collect()
    finally:
        gc.enable()
    return _median_us(ours), _median_us(ours_with_segments), _median_us(official)


def bench_memory() -> float:
    """Return the MiB allocated by compiling a 500-feature, 200-segment snapshot."""
    snapshot = snapshot_from_document(build_document(500, 100, 200, 150, 30))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    compiled = compile_snapshot(snapshot)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert compiled.plans
    return (after - before) / 1024 / 1024


def main() -> None:
    """Print the figures the engine is judged by; the speedup comes last."""
    ours, ours_with_segments, official = bench_speed()
    print(f"identities timed: {IDENTITIES}")
    print(f"flagpost all flags (compiled, reused): median {ours:.1f} us")
    print(f"flagpost all flags + matched segments: median {ours_with_segments:.1f} us")
    print(f"flagsmith-flag-engine get_evaluation_result: median {official:.1f} us")
    print(f"compiled snapshot, 500 features / 200 segments: {bench_memory():.2f} MiB")
    print(f"speedup incl. matched segments: {official / ours_with_segments:.1f}x")
    print(f"speedup vs flagsmith-flag-engine: {official / ours:.1f}x")


if __name__ == "__main__":
    main()
