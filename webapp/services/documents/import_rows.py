"""Row-level helpers for importing environment documents: set only what differs.

Kept apart from ``importing`` so each module stays small; nothing here queries.
"""

from __future__ import annotations

from typing import Any

from ...extensions import db
from ...models import (
    Environment,
    Feature,
    FeatureState,
    Identity,
    IdentityOverride,
    MultivariateAllocation,
    MultivariateOption,
    SegmentOverride,
    Trait,
    TypedValue,
    default_option_key,
)
from .. import values
from .validation import IdentityRecord, StateRecord, VariantRecord


def assign(row: object, **fields: Any) -> bool:
    """Set attributes only when they differ, so an unchanged row is never rewritten.

    :return: whether anything changed.
    """
    changed = False
    for name, value in fields.items():
        current = getattr(row, name)
        if not values.same(current, value):
            setattr(row, name, value)
            changed = True
    return changed


def set_value(row: Any, value: TypedValue) -> bool:
    if values.same(row.value, value):
        return False
    row.value = value
    return True


def guess_type(state: StateRecord, feature: Feature) -> str:
    if feature.id is not None:
        return feature.type
    return "MULTIVARIATE" if state.variants else "STANDARD"


def find_option(feature: Feature, variant: VariantRecord) -> tuple[MultivariateOption, bool]:
    """Find or create the feature's option for a document value (by external id, else value).

    :return: the option and whether it was created or changed.
    """
    created = False
    for option in feature.options:
        # The id SDKs see: the imported id, else Flagpost's own (a re-imported export).
        sdk_id = option.external_id if option.external_id is not None else option.id
        if variant.option_id is not None and sdk_id == variant.option_id:
            break
        if (
            variant.option_id is None
            and option.external_id is None
            and values.same(option.value, variant.value)
        ):
            break
    else:
        option = MultivariateOption(
            external_id=variant.option_id, default_allocation=variant.percentage
        )
        feature.options.append(option)
        created = True
    if variant.key is not None and option.key != variant.key:
        _free_key(feature, option, variant.key)
        option.key = variant.key
        created = True
    return option, set_value(option, variant.value) or created


def _free_key(feature: Feature, option: MultivariateOption, key: str) -> None:
    """Rename a sibling holding ``key`` (the document gives it to ``option``)."""
    for sibling in feature.options:
        if sibling is not option and sibling.key == key:
            taken = {o.key for o in feature.options if o.key} | {key}
            sibling.key = default_option_key(None, taken)
            db.session.flush()


def apply_state(row: FeatureState | SegmentOverride, item: StateRecord, feature: Feature) -> None:
    assign(row, enabled=item.enabled)
    set_value(row, item.value)
    if item.hash_key is not None:
        assign(row, hash_key=item.hash_key)
    existing = {allocation.option_id: allocation for allocation in row.allocations}
    for variant in item.variants:
        option = find_option(feature, variant)[0]
        allocation = existing.pop(option.id, None) if option.id is not None else None
        if allocation is None:
            allocation = MultivariateAllocation(option=option)
            row.allocations.append(allocation)
        assign(allocation, percentage=variant.percentage, seed=variant.seed)
    for stale in existing.values():
        row.allocations.remove(stale)
        db.session.delete(stale)


def apply_identity_override(row: IdentityOverride, item: StateRecord, feature: Feature) -> None:
    assign(row, enabled=item.enabled)
    set_value(row, item.value)
    if item.hash_key is not None:
        assign(row, hash_key=item.hash_key)
    # A value equal to one of a multivariate feature's options fixes that option.
    option_id = None
    if feature.type == "MULTIVARIATE":
        matches = [o.id for o in feature.options if values.same(o.value, item.value)]
        option_id = matches[0] if matches else None
    assign(row, option_id=option_id)


def set_traits(identity: Identity, environment: Environment, item: IdentityRecord) -> None:
    """Set the traits the document names (a null value deletes one); keep the others."""
    current = {trait.key: trait for trait in identity.traits}
    for key, value in item.traits:
        trait = current.get(key)
        if value is None:
            if trait is not None:
                identity.traits.remove(trait)
                db.session.delete(trait)
            continue
        if trait is None:
            trait = Trait(key=key, environment_id=environment.id)
            identity.traits.append(trait)
        if not values.same(trait.value, value):
            trait.value = value
