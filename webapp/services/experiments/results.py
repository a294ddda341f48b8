"""An experiment's results: per variant, exposures, conversions, rate, test and verdict.

Each variant is compared with control by Pearson's chi-squared test on the 2×2 table
(converted / not converted × control / variant), without continuity correction: the
two-sided two-proportion z-test in another form (``scipy.stats.chi2_contingency``). With
several variants the significance level is divided among them (Bonferroni), so "B beats
control" is not claimed by chance because there were many variants to try.

"Not enough data yet" until every variant and control have at least
``MIN_EXPOSURES`` exposed identities and every cell of each table expects at least
``MIN_EXPECTED`` identities (the usual condition for the chi-squared approximation).

Everything is read from the per-variant counters: a handful of rows at any scale.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import chi2_contingency
from sqlalchemy import select

from ...evaluation import FeatureValue
from ...extensions import db
from ...models import FeatureState
from ...models.experiment import CONTROL, Experiment, ExperimentArm
from ..humanize import value_text
from .arms import Arm, arms_of

MIN_EXPOSURES = 100
MIN_EXPECTED = 5.0
ALPHA = 0.05

NOT_ENOUGH = "not enough data yet"
BETTER = "better than control"
WORSE = "worse than control"
NO_DIFFERENCE = "no clear difference"


@dataclass(frozen=True, slots=True)
class ArmResult:
    """One variant's numbers; ``p_value`` and ``lift`` compare it with control."""

    key: str
    value: FeatureValue
    known: bool  # False for a variant reported by SDKs that the feature no longer has
    exposures: int
    conversions: int
    p_value: float | None = None
    verdict: str = ""

    @property
    def rate(self) -> float | None:
        return self.conversions / self.exposures if self.exposures else None

    @property
    def label(self) -> str:
        """Name the variant for people: its key and the value it serves."""
        return f"{self.key} ({value_text(self.value)})" if self.known else self.key


@dataclass(frozen=True, slots=True)
class Results:
    """The whole page's numbers and its plain-words verdict."""

    arms: tuple[ArmResult, ...]
    verdict: str
    enough_data: bool
    alpha: float

    @property
    def exposures(self) -> int:
        return sum(arm.exposures for arm in self.arms)

    @property
    def conversions(self) -> int:
        return sum(arm.conversions for arm in self.arms)


def _control_value(experiment: Experiment) -> FeatureValue:
    state = db.session.scalar(
        select(FeatureState).where(
            FeatureState.environment_id == experiment.environment_id,
            FeatureState.feature_id == experiment.feature_id,
        )
    )
    return None if state is None else state.value


def experiment_results(experiment: Experiment) -> Results:
    """Read an experiment's counters and compare every variant with control."""
    counters = {
        row.variant: (row.exposures, row.conversions)
        for row in db.session.scalars(
            select(ExperimentArm).where(ExperimentArm.experiment_id == experiment.id)
        )
    }
    arms: list[Arm] = list(arms_of(experiment.feature, _control_value(experiment)))
    known = {arm.key for arm in arms}
    arms += [Arm(key, None, None) for key in sorted(counters) if key not in known]
    rows = [(arm, arm.key in known, *counters.get(arm.key, (0, 0))) for arm in arms]
    return compare(
        [ArmResult(arm.key, arm.value, is_known, exposed, converted)
         for arm, is_known, exposed, converted in rows]
    )  # fmt: skip


def compare(arms: list[ArmResult]) -> Results:
    """Test every non-control arm against control (the first arm) and word a verdict.

    :param arms: control first, then the variants, with their counts.
    """
    control, variants = arms[0], arms[1:]
    alpha = ALPHA / max(1, len(variants))
    judged = [control] + [_judge(control, variant, alpha) for variant in variants]
    return Results(tuple(judged), _verdict(judged, alpha), _enough(judged), alpha)


def _enough(arms: list[ArmResult]) -> bool:
    return all(arm.verdict != NOT_ENOUGH for arm in arms[1:]) and bool(arms[1:])


def _expected_ok(control: ArmResult, variant: ArmResult) -> bool:
    total = control.exposures + variant.exposures
    converted = control.conversions + variant.conversions
    for exposed in (control.exposures, variant.exposures):
        for outcome in (converted, total - converted):
            if exposed * outcome / total < MIN_EXPECTED:
                return False
    return True


def _judge(control: ArmResult, variant: ArmResult, alpha: float) -> ArmResult:
    if min(control.exposures, variant.exposures) < MIN_EXPOSURES or not _expected_ok(
        control, variant
    ):
        return _with(variant, None, NOT_ENOUGH)
    table = [
        [control.conversions, control.exposures - control.conversions],
        [variant.conversions, variant.exposures - variant.conversions],
    ]
    p_value = float(chi2_contingency(table, correction=False).pvalue)
    if p_value >= alpha:
        return _with(variant, p_value, NO_DIFFERENCE)
    better = (variant.rate or 0.0) > (control.rate or 0.0)
    return _with(variant, p_value, BETTER if better else WORSE)


def _with(arm: ArmResult, p_value: float | None, verdict: str) -> ArmResult:
    return ArmResult(
        arm.key, arm.value, arm.known, arm.exposures, arm.conversions, p_value, verdict
    )


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _verdict(arms: list[ArmResult], alpha: float) -> str:
    control, variants = arms[0], arms[1:]
    if not variants:
        return "Not enough data yet: the feature has no variants to compare."
    short = [arm.key for arm in arms if arm.exposures < MIN_EXPOSURES]
    if any(arm.verdict == NOT_ENOUGH for arm in variants):
        who = ", ".join(short) if short else "some variants"
        return (
            f"Not enough data yet: every variant needs at least {MIN_EXPOSURES} exposed "
            f"identities and at least {MIN_EXPECTED:g} expected conversions and "
            f"non-conversions before the test can say anything ({who} still short)."
        )
    better = sorted((a for a in variants if a.verdict == BETTER), key=lambda a: -(a.rate or 0))
    worse = [a for a in variants if a.verdict == WORSE]
    if better:
        best = better[0]
        return (
            f"{best.label} beats {control.label}: {_percent(best.rate)} of exposed identities "
            f"converted against {_percent(control.rate)} (p = {best.p_value:.3g} < {alpha:.3g}). "
            "The difference is unlikely to be chance."
        )
    if worse:
        names = ", ".join(a.label for a in worse)
        return (
            f"{control.label} beats {names}: they convert less "
            f"(p < {alpha:.3g}). No variant beats {CONTROL}."
        )
    smallest = min(a.p_value or 1.0 for a in variants)
    return (
        f"No clear difference between the variants and {CONTROL} yet (smallest p = "
        f"{smallest:.3g}, needs < {alpha:.3g}). More data may show one, or there is none."
    )
