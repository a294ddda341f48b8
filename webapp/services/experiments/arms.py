"""The arms (variants) of an experiment: control plus each multivariate option.

A variant key is what the SDK reports in ``Flag.variant`` and sends back as the value of a
``$flag_exposure`` event: ``"control"`` for the feature's own value, the option's key for
an option. Options have no key column yet (variant keys are added with the flag analytics
work), so ``option_key`` derives one from the option id; it is the one place to switch to
the stored key.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...evaluation import FeatureValue, FlagResult, FlagSource
from ...models import Feature, MultivariateOption
from ...models.experiment import CONTROL
from .. import values


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant of an experiment: its key and the value it serves."""

    key: str
    value: FeatureValue
    option_id: int | None  # None for control


def option_key(option: MultivariateOption) -> str:
    """Return the variant key of an option."""
    stored = getattr(option, "key", None)
    return str(stored) if stored else f"option-{option.id}"


def arms_of(feature: Feature, control_value: FeatureValue) -> tuple[Arm, ...]:
    """Return control then every option of the feature, in option order."""
    return (Arm(CONTROL, control_value, None),) + tuple(
        Arm(option_key(option), option.value, option.id) for option in feature.options
    )


def variant_of(result: FlagResult, arms: tuple[Arm, ...]) -> str | None:
    """Return the variant key an evaluated flag gave, or None when no split decided it.

    Identity overrides and fixed segment overrides have no variant. A split result names
    its option's key when options have keys; until then the option is found by its value.
    """
    if result.source is FlagSource.IDENTITY_OVERRIDE:
        return None
    if result.variant is not None:
        return result.variant
    if result.source is not FlagSource.SPLIT:
        return None
    for arm in arms:
        if arm.option_id is not None and values.same(arm.value, result.value):
            return arm.key
    return None
