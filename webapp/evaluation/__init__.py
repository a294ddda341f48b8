"""Pure flag evaluation, exactly equal to the official Flagsmith engine (11.x).

No I/O, clock or randomness; no Flask, SQLAlchemy or other ``webapp`` imports.
Compile a snapshot once, then evaluate it for many identities.
"""

from .compile import CompiledEnvironment, compile_snapshot
from .counterfactual import Counterfactual, counterfactual
from .engine import EvaluationResult, evaluate, evaluate_feature
from .explain import (
    CandidateTrace,
    ConditionTrace,
    Explanation,
    FeatureExplanation,
    RuleTrace,
    SegmentTrace,
    SplitRange,
    SplitTrace,
    explain,
)
from .flagsmith_document import snapshot_from_document
from .hashing import hashed_percentage
from .operators import SUPPORTED_OPERATORS
from .types import (
    Condition,
    EnvironmentSnapshot,
    FeatureInput,
    FeatureValue,
    FlagResult,
    FlagSource,
    IdentityInput,
    IdentityOverrideInput,
    Rule,
    RuleError,
    SegmentInput,
    SegmentMatch,
    SegmentOverrideInput,
    TraitValue,
    Variant,
)
from .validation import condition_error, validate_rules

__all__ = [
    "SUPPORTED_OPERATORS",
    "CandidateTrace",
    "CompiledEnvironment",
    "Condition",
    "ConditionTrace",
    "Counterfactual",
    "EnvironmentSnapshot",
    "EvaluationResult",
    "Explanation",
    "FeatureExplanation",
    "FeatureInput",
    "FeatureValue",
    "FlagResult",
    "FlagSource",
    "IdentityInput",
    "IdentityOverrideInput",
    "Rule",
    "RuleError",
    "RuleTrace",
    "SegmentInput",
    "SegmentMatch",
    "SegmentOverrideInput",
    "SegmentTrace",
    "SplitRange",
    "SplitTrace",
    "TraitValue",
    "Variant",
    "compile_snapshot",
    "condition_error",
    "counterfactual",
    "evaluate",
    "evaluate_feature",
    "explain",
    "hashed_percentage",
    "snapshot_from_document",
    "validate_rules",
]
