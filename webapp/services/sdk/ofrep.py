"""OpenFeature Remote Evaluation Protocol (OFREP): context parsing and result mapping.

Mapping decisions (the protocol is generic, Flagsmith flags carry enabled *and* value):
- a feature without a value resolves to its ``enabled`` boolean;
- a feature with a value resolves to that value; when disabled, reason ``DISABLED``;
- ``context.targetingKey`` is the identifier; the other context fields are transient traits
  (evaluated, never stored); the identity's stored traits and overrides still apply.
- without a targeting key, untargeted flags resolve statically; a flag whose value depends
  on the identity (segment overrides, splits) answers ``TARGETING_KEY_MISSING``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...evaluation import FlagResult, FlagSource, evaluate
from . import sdk_service
from .parsing import (
    BadRequest,
    IdentifyInput,
    TraitInput,
    parse_identifier,
    parse_trait_key,
    parse_trait_value,
)
from .snapshots import EnvironmentBundle

MAX_CONTEXT_FIELDS = 100
REASONS = {"STATIC", "DEFAULT", "TARGETING_MATCH", "SPLIT"}


class OfrepError(Exception):
    """An OFREP error: an error code from the protocol and a readable detail."""

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


@dataclass(frozen=True, slots=True)
class OfrepContext:
    targeting_key: str | None
    traits: tuple[TraitInput, ...]


def parse_request(body: Any) -> OfrepContext:
    """Parse ``{"context": {...}}``; a missing body or context means an empty context.

    :raises OfrepError: ``INVALID_CONTEXT`` for a context that is not an object of
        scalar values, or a targeting key that is not a valid identifier.
    """
    if body is None:
        return OfrepContext(None, ())
    if not isinstance(body, dict):
        raise OfrepError("INVALID_CONTEXT", "The request body must be a JSON object")
    context = body.get("context", {})
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise OfrepError("INVALID_CONTEXT", "context must be a JSON object")
    if len(context) > MAX_CONTEXT_FIELDS + 1:
        raise OfrepError("INVALID_CONTEXT", f"context: at most {MAX_CONTEXT_FIELDS} fields")
    try:
        return _parse_context(context)
    except BadRequest as exc:
        raise OfrepError("INVALID_CONTEXT", str(exc)) from exc


def _parse_context(context: dict[str, Any]) -> OfrepContext:
    key = context.get("targetingKey")
    targeting_key = None if key is None else parse_identifier(key, "context.targetingKey")
    traits = []
    for name, value in context.items():
        if name == "targetingKey":
            continue
        field = f"context.{name}"
        parsed = parse_trait_value(value, field)
        if parsed is not None:
            traits.append(TraitInput(parse_trait_key(name, field), parsed, transient=True))
    return OfrepContext(targeting_key, tuple(traits))


def depends_on_identity(bundle: EnvironmentBundle, name: str) -> bool:
    """Tell whether a flag's value can depend on the identity (segment overrides or splits)."""
    return name in bundle.compiled.plans_by_name


def evaluation_json(key: str, result: FlagResult) -> dict[str, Any]:
    """Map an evaluated flag to an OFREP success object."""
    kind = result.reason_kind
    metadata: dict[str, Any] = {"enabled": result.enabled, "flagsmithReason": result.reason}
    if result.value is None:
        value: Any = result.enabled
        reason = kind if kind in REASONS else "UNKNOWN"
    else:
        value = result.value
        reason = kind if result.enabled else "DISABLED"
    payload: dict[str, Any] = {"key": key, "value": value, "reason": reason, "metadata": metadata}
    # Flagsmith options have no key unless one was set; the option's value names the variant.
    variant = result.variant
    if variant is None and result.source is FlagSource.SPLIT:
        variant = str(result.value)
    if variant is not None:
        payload["variant"] = variant
    return payload


def failure_json(key: str | None, code: str, detail: str) -> dict[str, Any]:
    """Build an OFREP failure object."""
    payload: dict[str, Any] = {"errorCode": code, "errorDetails": detail}
    if key is not None:
        payload["key"] = key
    return payload


def _results(
    bundle: EnvironmentBundle, is_server: bool, context: OfrepContext, now: datetime
) -> dict[str, FlagResult]:
    """Evaluate for the targeting key, or the environment defaults without one."""
    if context.targeting_key is None:
        return dict(evaluate(bundle.compiled).flags)
    request = IdentifyInput(context.targeting_key, context.traits, transient=True)
    return sdk_service.identify(bundle, request, is_server=is_server, now=now).results


def _visible_names(bundle: EnvironmentBundle, is_server: bool) -> set[str]:
    return {meta.name for meta in sdk_service.visible_features(bundle, is_server)}


def _is_hidden(bundle: EnvironmentBundle, result: FlagResult | None, names: set[str]) -> bool:
    if result is None or result.name not in names:
        return True
    return bundle.hide_disabled_flags and not result.enabled


def evaluate_one(
    bundle: EnvironmentBundle, is_server: bool, context: OfrepContext, key: str, now: datetime
) -> dict[str, Any]:
    """Evaluate one flag for an OFREP request.

    :return: the OFREP success object.
    :raises OfrepError: ``FLAG_NOT_FOUND`` (404) or ``TARGETING_KEY_MISSING``.
    """
    result = _results(bundle, is_server, context, now).get(key)
    if result is None or _is_hidden(bundle, result, _visible_names(bundle, is_server)):
        raise OfrepError("FLAG_NOT_FOUND", f"No flag named {key!r}", status=404)
    if context.targeting_key is None and depends_on_identity(bundle, key):
        raise OfrepError("TARGETING_KEY_MISSING", "This flag needs context.targetingKey")
    return evaluation_json(key, result)


def evaluate_all(
    bundle: EnvironmentBundle, is_server: bool, context: OfrepContext, now: datetime
) -> list[dict[str, Any]]:
    """Evaluate every visible flag for an OFREP bulk request, in name order."""
    results = _results(bundle, is_server, context, now)
    names = _visible_names(bundle, is_server)
    items = []
    for name, result in sorted(results.items()):
        if _is_hidden(bundle, result, names):
            continue
        if context.targeting_key is None and depends_on_identity(bundle, name):
            items.append(
                failure_json(name, "TARGETING_KEY_MISSING", "This flag needs context.targetingKey")
            )
        else:
            items.append(evaluation_json(name, result))
    return items
