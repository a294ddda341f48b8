"""The mapper: ORM rows -> the evaluation's input (STYLE §3, "conversion at the boundary").

There is one path from the database to ``webapp.evaluation``: the environment's rows become the
Flagsmith environment document (``documents.exporting.build_environment_document``, the very
document the official SDKs evaluate locally), and ``evaluation.snapshot_from_document`` reads
that document into typed, frozen inputs. Going through the document keeps the dashboard, the
SDK API and local-evaluation SDKs on exactly the same data; nothing else builds evaluation
inputs from rows.
"""

from __future__ import annotations

from ..evaluation import EnvironmentSnapshot, snapshot_from_document
from ..models import Environment
from . import regex_guard
from .documents.exporting import build_environment_document


def build_snapshot(environment: Environment) -> EnvironmentSnapshot:
    """Map an environment's rows to the evaluation's snapshot.

    Identity overrides are left out (they are read per identity on the hot path), and
    patterns that backtrack catastrophically are marked refused, so they never match rather
    than stall the worker.

    :param environment: the environment, freshly loaded
    :return: the evaluation input for every flag and segment of the environment
    """
    document = build_environment_document(environment, include_identity_overrides=False)
    return regex_guard.with_refusals(snapshot_from_document(document))
