"""The data model; importing this package registers every table."""

from .account import ROLES, TOKEN_PURPOSES, AccountToken, IdentityLink, ProjectRole, User
from .audit import AuditEvent
from .base import TypedValue, decode_value, encode_value, value_type_of
from .experiment import Experiment, ExperimentArm, ExperimentConversion, ExperimentExposure
from .feature import (
    FEATURE_NAME_PATTERN,
    FEATURE_TYPES,
    OPTION_KEY_MAX,
    Feature,
    FeatureState,
    MultivariateAllocation,
    MultivariateOption,
    default_option_key,
)
from .identity import (
    IDENTIFIER_MAX,
    TRAIT_KEY_MAX,
    TRAIT_STRING_MAX,
    TRAIT_TYPES,
    Identity,
    IdentityOverride,
    Trait,
    numeric_form,
    trait_row,
)
from .organisation import (
    SERVER_KEY_PREFIX,
    Environment,
    Organisation,
    Project,
    ServerKey,
    new_client_key,
    new_server_key,
)
from .segment import Segment, SegmentOverride
from .settings import TraitColumnDefault
from .usage import NO_VARIANT, FlagSeen, FlagUsage, FlagUsageDaily, FlagValuesDaily, state_key

__all__ = [
    "AccountToken",
    "TOKEN_PURPOSES",
    "Experiment",
    "ExperimentArm",
    "ExperimentConversion",
    "ExperimentExposure",
    "OPTION_KEY_MAX",
    "default_option_key",
    "NO_VARIANT",
    "FlagSeen",
    "FlagUsage",
    "FlagUsageDaily",
    "FlagValuesDaily",
    "TraitColumnDefault",
    "AuditEvent",
    "Environment",
    "FEATURE_NAME_PATTERN",
    "FEATURE_TYPES",
    "Feature",
    "FeatureState",
    "IDENTIFIER_MAX",
    "Identity",
    "IdentityLink",
    "IdentityOverride",
    "MultivariateAllocation",
    "MultivariateOption",
    "Organisation",
    "Project",
    "ProjectRole",
    "ROLES",
    "SERVER_KEY_PREFIX",
    "Segment",
    "SegmentOverride",
    "ServerKey",
    "TRAIT_KEY_MAX",
    "TRAIT_STRING_MAX",
    "TRAIT_TYPES",
    "Trait",
    "TypedValue",
    "User",
    "decode_value",
    "encode_value",
    "new_client_key",
    "new_server_key",
    "numeric_form",
    "state_key",
    "trait_row",
    "value_type_of",
]
