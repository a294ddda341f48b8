"""Multivariate options of a feature and their per-environment allocations.

Options are project-wide (``bump_project``); allocations live on one environment's default
state (``bump_environment``, via ``catalog.save_state``). Every change is audited in the
same transaction and committed here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from ...extensions import db
from ...models import (
    OPTION_KEY_MAX,
    Environment,
    Feature,
    FeatureState,
    MultivariateAllocation,
    MultivariateOption,
    User,
)
from .. import audit, humanize, revisions, values
from ..errors import NotFound, ValidationError
from .catalog import save_state, state_for_update, state_snapshot


def check_percentages(percentages: Sequence[float], field: str = "allocations") -> None:
    """Refuse NaN, infinities, negatives, values over 100 and sums over 100.

    :raises ValidationError: naming the first rule broken.
    """
    for percentage in percentages:
        if not math.isfinite(percentage):
            raise ValidationError("Percentages must be numbers", field)
        if percentage < 0 or percentage > 100:
            raise ValidationError("Each percentage lies between 0 and 100", field)
    total = math.fsum(percentages)
    # Decimal inputs such as 33.3 + 33.3 + 33.4 may sum to 100.00000000000001 in binary.
    if total > 100 + 1e-9:
        message = f"The allocations add up to {total:g}%; at most 100% is allowed"
        raise ValidationError(message, field)


OPTION_KEY_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{OPTION_KEY_MAX - 1}}}")


def check_option_key(feature: Feature, key: str, option: MultivariateOption | None) -> str:
    """Check a variant key typed on the Features page: a name, not "control", unique.

    :raises ValidationError: naming the rule broken (field ``key``).
    """
    if not OPTION_KEY_PATTERN.fullmatch(key):
        raise ValidationError(
            f"A variant key has 1 to {OPTION_KEY_MAX} letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            "key",
        )
    if key == "control":
        raise ValidationError('"control" names the feature\'s own value; choose another key', "key")
    for other in feature.options:
        if other is not option and other.key == key:
            raise ValidationError(f"Another option of this feature has the key {key}", "key")
    return key


def state_allocations(state: FeatureState | None, feature: Feature) -> list[tuple[Any, float]]:
    """Pair each option of the feature with its percentage in ``state`` (0 when unset)."""
    current = {a.option_id: a.percentage for a in state.allocations} if state else {}
    return [(option, current.get(option.id, 0.0)) for option in feature.options]


def add_option(
    feature: Feature,
    kind: str,
    text: str,
    default_allocation: float,
    actor: User | None,
    key: str | None = None,
) -> MultivariateOption:
    """Add a multivariate option; every environment's state gets its default allocation.

    :param key: the variant key SDKs see; None or blank: one made from the value.
    :raises ValidationError: not a multivariate feature, bad value or key, or an environment
        (or the defaults) whose allocations would pass 100%.
    """
    if feature.type != "MULTIVARIATE":
        raise ValidationError("Only multivariate features have options", "value")
    value = values.parse_value(kind, text, values.FLAG)
    if key:
        check_option_key(feature, key, None)
    check_percentages([o.default_allocation for o in feature.options] + [default_allocation])
    states = list(
        db.session.scalars(select(FeatureState).where(FeatureState.feature_id == feature.id))
    )
    for state in states:
        check_percentages([a.percentage for a in state.allocations] + [default_allocation])
    option = MultivariateOption(
        feature_id=feature.id, default_allocation=default_allocation, key=key or None
    )
    option.value = value
    db.session.add(option)
    db.session.flush()
    for state in states:
        state.allocations.append(
            MultivariateAllocation(option_id=option.id, percentage=default_allocation)
        )
        # The state's allocations changed: pages showing the old ones are stale now.
        state.version += 1
    _audit_option(actor, "create", feature, option, None, _option_snapshot(option))
    revisions.bump_project(feature.project_id)
    db.session.commit()
    return option


def get_option(feature: Feature, option_id: int) -> MultivariateOption:
    """Return one of the feature's options.

    :raises NotFound: when the option is not the feature's.
    """
    option = db.session.get(MultivariateOption, option_id)
    if option is None or option.feature_id != feature.id:
        raise NotFound("No such option for this feature")
    return option


def update_option(
    feature: Feature,
    option_id: int,
    kind: str,
    text: str,
    actor: User | None,
    key: str | None = None,
) -> MultivariateOption:
    """Change an option's value and variant key (audited, bumped); no change records nothing.

    The option keeps its id, so identities keep their buckets and get the new value.

    :param key: the new variant key; None or blank keeps the current one.
    :raises NotFound: when the option is not the feature's.
    :raises ValidationError: when the text is not a value of the chosen type, or a bad key.
    """
    option = get_option(feature, option_id)
    value = values.parse_value(kind, text, values.FLAG)
    if key and key != option.key:
        check_option_key(feature, key, option)
    before = _option_snapshot(option)
    option.value = value
    if key:
        option.key = key
    after = _option_snapshot(option)
    if not values.same(after, before):
        _audit_option(actor, "update", feature, option, before, after)
        revisions.bump_project(feature.project_id)
    db.session.commit()
    return option


def delete_option(feature: Feature, option_id: int, actor: User | None) -> None:
    """Delete a multivariate option and its allocations in every environment.

    :raises NotFound: when the option is not the feature's.
    """
    option = get_option(feature, option_id)
    _audit_option(actor, "delete", feature, option, _option_snapshot(option), None)
    revisions.bump_project(feature.project_id)
    db.session.delete(option)
    db.session.commit()
    db.session.expire(feature)


def _option_snapshot(option: MultivariateOption) -> dict[str, Any]:
    return {
        "value": option.value,
        "key": option.key,
        "default_allocation": option.default_allocation,
    }


def _audit_option(
    actor: User | None,
    action: str,
    feature: Feature,
    option: MultivariateOption,
    before: Any,
    after: Any,
) -> None:
    audit.record(
        actor,
        action,
        "multivariate_option",
        object_id=option.id,
        object_label=f"{feature.name}: {humanize.value_text(option.value)}"[:300],
        project_id=feature.project_id,
        before=before,
        after=after,
    )


def set_allocations(
    environment: Environment,
    feature: Feature,
    percentages: Mapping[int, float],
    actor: User | None,
    *,
    version: int | None = None,
) -> FeatureState:
    """Set the options' percentages on the feature's default state in one environment.

    :param percentages: option id -> percentage; options left out keep their percentage.
    :param version: the state version the page showed; None skips the check.
    :raises ValidationError: unknown option, NaN, negative, over 100 or a sum over 100.
    :raises Conflict: when the state changed since the page showed it.
    """
    options = {o.id for o in feature.options}
    unknown = set(percentages) - options
    if unknown:
        raise ValidationError("An option no longer exists; reload the page", "allocations")
    state = state_for_update(environment, feature)
    current = {a.option_id: a for a in state.allocations}
    merged = {oid: a.percentage for oid, a in current.items()} | dict(percentages)
    check_percentages(list(merged.values()))
    before = state_snapshot(state)
    for option_id, percentage in percentages.items():
        if option_id in current:
            current[option_id].percentage = percentage
        else:
            state.allocations.append(
                MultivariateAllocation(option_id=option_id, percentage=percentage)
            )
    db.session.flush()
    save_state(environment, feature, state, before, actor, version)
    return state
